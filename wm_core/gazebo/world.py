"""The Gazebo (gz-sim, Harmonic) world generated from a cell file: table, bin, objects, camera.

The geometry is the cell's, built the way :mod:`wm_core.sim.scene` builds the MuJoCo scene (a
slab table whose top is at ``table.top_z``, a bin of a floor and four walls, a floor plane
0.75 m below), so both simulators show the robot the same cell. The scene camera has the cell's
image size, intrinsics (horizontal field of view from ``fx`` and the width, plus ``<lens>``
intrinsics for non-centred or non-square pixels) and pose.

Camera frames. The cell's ``T_world_cam`` is the OpenCV optical frame (x right, y down, z
forward). A Gazebo camera looks along its link's +x with +z up (y left), so the sensor pose is
``T_world_cam @ R_OPTICAL_GZ`` (:func:`gazebo_camera_pose`), and
``optical_from_gazebo`` turns it back.

This module reads the cell and the arm only (never the simulator): the objects are given to
it (:class:`WorldObject`), e.g. as ``wm gazebo world --seed`` samples them for a MuJoCo seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

import numpy as np
from transforms3d.euler import euler2mat, mat2euler

from wm_core.cell import Workcell
from wm_core.config import ConfigError

WORLD_NAME = "wm_cell"
"""The gz world's name (gz topics are ``/world/<name>/...``)."""
CAMERA_MODEL = "scene_camera"
"""The static model that carries the scene camera sensor."""
GZ_IMAGE_TOPIC = "/wm/gz/camera/image"
GZ_CAMERA_INFO_TOPIC = "/wm/gz/camera/camera_info"
FLOOR_Z_BELOW_TABLE = 0.75
"""The floor plane lies this far (m) below the table top, as in the MuJoCo scene."""
OBJECT_DENSITY = 400.0
"""kg/m^3 of the objects (light plastic or foam, as in the MuJoCo scene); at least 30 g."""
CAMERA_CLIP = (0.05, 10.0)
"""Near and far clip planes (m) of the scene camera."""
CAMERA_RATE_HZ = 10.0
"""Scene camera update rate (Hz) by default: the stack's control rate (``control_hz``)."""

R_OPTICAL_GZ = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
"""Rotation of a Gazebo camera frame (x forward, y left, z up) in the OpenCV optical frame
(x right, y down, z forward): its columns are the Gazebo axes in optical coordinates."""


@dataclass(frozen=True)
class WorldObject:
    """One loose object on the table (a dynamic gz model)."""

    name: str
    """Model name (also the suction relay's name for it); letters, digits and underscores."""
    shape: str
    """``box`` or ``cylinder``."""
    half_size: tuple[float, float, float]
    """Box: half-extents (m); cylinder: (radius, radius, half height)."""
    rgba: tuple[float, float, float, float]
    """Colour, each 0-1."""
    pos: tuple[float, float, float]
    """Centre (m) in the world."""
    yaw: float = 0.0
    """Rotation (rad) about world z."""

    def __post_init__(self) -> None:
        if not self.name.replace("_", "").isalnum():
            raise ConfigError(f"object name={self.name!r} must be letters, digits and _")
        if self.shape not in ("box", "cylinder"):
            raise ConfigError(f"object {self.name}: shape={self.shape!r} must be box or cylinder")
        hs = tuple(float(v) for v in self.half_size)
        if len(hs) != 3 or not all(0.0 < v < 1.0 for v in hs):
            raise ConfigError(f"object {self.name}: half_size={hs} must be 3 sizes in (0, 1) m")
        object.__setattr__(self, "half_size", hs)

    @property
    def mass(self) -> float:
        hx, hy, hz = self.half_size
        vol = 8 * hx * hy * hz if self.shape == "box" else math.pi * hx**2 * 2 * hz
        return max(0.03, OBJECT_DENSITY * vol)

    @property
    def diag_inertia(self) -> tuple[float, float, float]:
        """Principal moments (kg m^2) of a solid box or cylinder about its centre."""
        m = self.mass
        hx, hy, hz = self.half_size
        if self.shape == "box":
            a, b, c = 2 * hx, 2 * hy, 2 * hz
            return (m * (b * b + c * c) / 12, m * (a * a + c * c) / 12, m * (a * a + b * b) / 12)
        r, h = hx, 2 * hz
        side = m * (3 * r * r + h * h) / 12
        return (side, side, m * r * r / 2)


def horizontal_fov(cell: Workcell) -> float:
    """Horizontal field of view (rad) of the cell's camera: ``2 atan(width / (2 fx))``."""
    cam = cell.camera
    return 2.0 * math.atan(cam.width / (2.0 * cam.k_matrix[0, 0]))


def gazebo_camera_pose(t_world_optical: np.ndarray) -> np.ndarray:
    """[4, 4] pose of the Gazebo camera frame (looks along +x, z up) for an optical-frame pose."""
    t = np.array(t_world_optical, float)
    out = t.copy()
    out[:3, :3] = t[:3, :3] @ R_OPTICAL_GZ
    return out


def optical_from_gazebo(t_world_gz: np.ndarray) -> np.ndarray:
    """The inverse of :func:`gazebo_camera_pose`."""
    t = np.array(t_world_gz, float)
    out = t.copy()
    out[:3, :3] = t[:3, :3] @ R_OPTICAL_GZ.T
    return out


def pose_text(t: np.ndarray) -> str:
    """SDF ``<pose>`` text ``x y z roll pitch yaw`` (fixed axes x-y-z) of a [4, 4] pose."""
    roll, pitch, yaw = mat2euler(np.asarray(t)[:3, :3], axes="sxyz")
    return " ".join(f"{float(v):.9g}" for v in (*np.asarray(t)[:3, 3], roll, pitch, yaw))


def pose_from_text(text: str) -> np.ndarray:
    """[4, 4] pose of SDF ``<pose>`` text (for tests and tools)."""
    x, y, z, roll, pitch, yaw = (float(v) for v in text.split())
    t = np.eye(4)
    t[:3, :3] = euler2mat(roll, pitch, yaw, axes="sxyz")
    t[:3, 3] = (x, y, z)
    return t


def _f(*values: float) -> str:
    return " ".join(f"{float(v):.9g}" for v in values)


def _box_geometry(size: Sequence[float]) -> str:
    return f"<geometry><box><size>{_f(*size)}</size></box></geometry>"


def _material(rgba: Sequence[float]) -> str:
    c = _f(*rgba)
    return f"<material><ambient>{c}</ambient><diffuse>{c}</diffuse></material>"


def _static_box_link(name: str, pose: Sequence[float], size: Sequence[float], rgba) -> str:
    geom = _box_geometry(size)
    return (
        f'<link name="{name}"><pose>{_f(*pose, 0, 0, 0)}</pose>'
        f'<collision name="collision">{geom}</collision>'
        f'<visual name="visual">{geom}{_material(rgba)}</visual></link>'
    )


TABLE_RGBA = (0.72, 0.6, 0.45, 1.0)
BIN_RGBA = (0.2, 0.35, 0.6, 1.0)


def table_model(cell: Workcell) -> str:
    """The table: a static slab, its top at ``table.top_z`` over the cell's x, y extent."""
    tx, ty, th, z0 = cell.table.x, cell.table.y, cell.table.thickness, cell.table.top_z
    centre = ((tx[0] + tx[1]) / 2, (ty[0] + ty[1]) / 2, z0 - th / 2)
    size = (tx[1] - tx[0], ty[1] - ty[0], th)
    return (
        f'<model name="table"><static>true</static>'
        f"{_static_box_link('top', centre, size, TABLE_RGBA)}</model>"
    )


def bin_boxes(cell: Workcell) -> list[tuple[str, tuple[float, ...], tuple[float, ...]]]:
    """(name, centre, full size) of the bin's floor and four walls (as in the MuJoCo scene)."""
    b, z0 = cell.bin, cell.table.top_z
    cx, cy = b.center
    h, t, w = b.inner_half, b.wall_thickness, b.wall_height
    return [
        ("floor", (cx, cy, z0 + t / 2), (2 * (h + t), 2 * (h + t), t)),
        ("wall_n", (cx, cy + h + t / 2, z0 + w / 2), (2 * (h + t), t, w)),
        ("wall_s", (cx, cy - h - t / 2, z0 + w / 2), (2 * (h + t), t, w)),
        ("wall_e", (cx + h + t / 2, cy, z0 + w / 2), (t, 2 * h, w)),
        ("wall_w", (cx - h - t / 2, cy, z0 + w / 2), (t, 2 * h, w)),
    ]


def bin_model(cell: Workcell) -> str:
    links = "".join(_static_box_link(n, c, s, BIN_RGBA) for n, c, s in bin_boxes(cell))
    return f'<model name="bin"><static>true</static>{links}</model>'


def object_model(o: WorldObject) -> str:
    if o.shape == "box":
        geom = _box_geometry([2 * v for v in o.half_size])
    else:
        r, _, hz = o.half_size
        geom = (
            f"<geometry><cylinder><radius>{_f(r)}</radius><length>{_f(2 * hz)}</length>"
            "</cylinder></geometry>"
        )
    ixx, iyy, izz = o.diag_inertia
    friction = "<surface><friction><ode><mu>1.0</mu><mu2>1.0</mu2></ode></friction></surface>"
    return (
        f'<model name="{o.name}"><pose>{_f(*o.pos, 0, 0, o.yaw)}</pose>'
        f'<link name="link"><inertial><mass>{_f(o.mass)}</mass><inertia>'
        f"<ixx>{_f(ixx)}</ixx><iyy>{_f(iyy)}</iyy><izz>{_f(izz)}</izz>"
        "<ixy>0</ixy><ixz>0</ixz><iyz>0</iyz></inertia></inertial>"
        f'<collision name="collision">{geom}{friction}</collision>'
        f'<visual name="visual">{geom}{_material(o.rgba)}</visual></link></model>'
    )


def camera_model(
    cell: Workcell, size: tuple[int, int] | None = None, rate_hz: float = CAMERA_RATE_HZ
) -> str:
    """The scene camera: a static model whose link is at the Gazebo camera pose, with a camera
    sensor of the cell's field of view, intrinsics and distortion, rendering ``size`` (width,
    height; None: the cell's) with ``K`` scaled to it, as the MuJoCo sim node renders
    ``image_size``, at ``rate_hz``."""
    cam = cell.camera
    width, height = size or (cam.width, cam.height)
    if not (8 <= width <= 16384 and 8 <= height <= 16384):
        raise ConfigError(f"camera render size {width}x{height} must be 8-16384 px per side")
    if not 0.1 <= rate_hz <= 1000.0:
        raise ConfigError(f"camera rate_hz={rate_hz} must be in [0.1, 1000]")
    k = cam.k_for(width, height)
    k1, k2, p1, p2, k3 = cam.D
    near, far = CAMERA_CLIP
    intrinsics = (
        f"<intrinsics><fx>{_f(k[0, 0])}</fx><fy>{_f(k[1, 1])}</fy><cx>{_f(k[0, 2])}</cx>"
        f"<cy>{_f(k[1, 2])}</cy><s>0</s></intrinsics>"
    )
    distortion = (
        f"<distortion><k1>{_f(k1)}</k1><k2>{_f(k2)}</k2><k3>{_f(k3)}</k3><p1>{_f(p1)}</p1>"
        f"<p2>{_f(p2)}</p2><center>0.5 0.5</center></distortion>"
    )
    return (
        f'<model name="{CAMERA_MODEL}"><static>true</static>'
        f"<pose>{pose_text(gazebo_camera_pose(cam.pose))}</pose>"
        '<link name="link"><sensor name="camera" type="camera">'
        f"<always_on>true</always_on><update_rate>{_f(rate_hz)}</update_rate>"
        f"<topic>{GZ_IMAGE_TOPIC}</topic>"
        f"<gz_frame_id>{escape(cam.frame_id)}</gz_frame_id>"
        f"<camera><camera_info_topic>{GZ_CAMERA_INFO_TOPIC}</camera_info_topic>"
        f"<horizontal_fov>{_f(horizontal_fov(cell))}</horizontal_fov>"
        f"<image><width>{width}</width><height>{height}</height>"
        "<format>R8G8B8</format></image>"
        f"<clip><near>{_f(near)}</near><far>{_f(far)}</far></clip>"
        f"{distortion}<lens>{intrinsics}</lens></camera></sensor></link></model>"
    )


def world_sdf(
    cell: Workcell,
    objects: Sequence[WorldObject] = (),
    camera_size: tuple[int, int] | None = None,
    camera_rate_hz: float = CAMERA_RATE_HZ,
) -> str:
    """The complete SDF world of ``cell`` with ``objects`` on the table (the arm is spawned
    into it separately, from the URDF: :func:`wm_core.gazebo.robot.gazebo_urdf`); the camera
    renders ``camera_size`` (None: the cell's native size) at ``camera_rate_hz``."""
    names = [o.name for o in objects]
    if len(set(names)) != len(names):
        raise ConfigError(f"object names {names} must be unique")
    floor_z = cell.table.top_z - FLOOR_Z_BELOW_TABLE
    systems = (
        ("gz-sim-physics-system", "gz::sim::systems::Physics", ""),
        ("gz-sim-user-commands-system", "gz::sim::systems::UserCommands", ""),
        ("gz-sim-scene-broadcaster-system", "gz::sim::systems::SceneBroadcaster", ""),
        (
            "gz-sim-sensors-system",
            "gz::sim::systems::Sensors",
            "<render_engine>ogre2</render_engine>",
        ),
    )
    plugins = "\n    ".join(
        f'<plugin filename="{f}" name="{n}">{inner}</plugin>' for f, n, inner in systems
    )
    ground = (
        f'<model name="ground"><static>true</static><pose>0 0 {_f(floor_z)} 0 0 0</pose>'
        '<link name="link"><collision name="collision"><geometry><plane><normal>0 0 1</normal>'
        '<size>6 6</size></plane></geometry></collision><visual name="visual"><geometry>'
        "<plane><normal>0 0 1</normal><size>6 6</size></plane></geometry>"
        f"{_material((0.25, 0.27, 0.3, 1.0))}</visual></link></model>"
    )
    source = escape(cell.source or cell.name)
    body = "\n    ".join(
        [
            ground,
            table_model(cell),
            bin_model(cell),
            camera_model(cell, camera_size, camera_rate_hz),
            *(object_model(o) for o in objects),
        ]
    )
    return f"""<?xml version="1.0"?>
<!-- Generated by wm_core.gazebo from the cell {source}: do not edit, regenerate. -->
<sdf version="1.9">
  <world name="{WORLD_NAME}">
    <physics name="1ms" type="ignored"><max_step_size>0.001</max_step_size>
      <real_time_factor>1.0</real_time_factor></physics>
    {plugins}
    <gravity>0 0 -9.81</gravity>
    <scene><ambient>0.6 0.6 0.6 1</ambient><background>0.7 0.7 0.75 1</background></scene>
    <light type="directional" name="key"><cast_shadows>true</cast_shadows>
      <pose>0.6 -0.6 2.0 0 0 0</pose><diffuse>0.7 0.7 0.7 1</diffuse>
      <specular>0.2 0.2 0.2 1</specular><direction>-0.2 0.3 -1</direction></light>
    <light type="directional" name="fill"><cast_shadows>false</cast_shadows>
      <pose>-0.6 0.8 1.8 0 0 0</pose><diffuse>0.35 0.35 0.35 1</diffuse>
      <specular>0 0 0 1</specular><direction>0.3 -0.3 -1</direction></light>
    {body}
  </world>
</sdf>
"""
