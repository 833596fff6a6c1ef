"""Build the MuJoCo table-clearing scene (MJCF text) for one seeded episode."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from transforms3d.quaternions import mat2quat

from wm_core.cell import Workcell, sim_cell
from wm_core.config import ConfigError
from wm_core.gazebo.world import WorldObject
from wm_core.robot import load_arm
from wm_core.robot.mjcf import arm_actuators_xml, arm_body_xml
from wm_core.sim.config import LAYOUT, SceneConfig


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    shape: str  # "box" or "cylinder"
    half_size: tuple[float, float, float]  # box: half-extents; cylinder: (r, r, half_height)
    rgba: tuple[float, float, float, float]
    pos: tuple[float, float, float]
    yaw: float

    @property
    def half_height(self) -> float:
        return self.half_size[2]


RGB = tuple[float, float, float]

TABLE_RGB: RGB = (0.72, 0.6, 0.45)
BIN_RGB: RGB = (0.2, 0.35, 0.6)
ARM_RGB: RGB = (0.55, 0.6, 0.68)
FLOOR_RGB: tuple[RGB, RGB] = ((0.25, 0.27, 0.3), (0.2, 0.22, 0.25))
TEXTURES = ("flat", "checker", "gradient")


@dataclass(frozen=True)
class Appearance:
    """One episode's randomised look (domain randomisation; ``draw_appearance``)."""

    table: tuple[RGB, RGB]
    """The table texture's two colours."""
    table_texture: str
    """Its MuJoCo builtin pattern, one of ``TEXTURES``."""
    table_marks: float
    """Fraction of the table texture's pixels replaced by random specks, 0-0.2."""
    floor: tuple[RGB, RGB]
    bin: RGB
    arm: RGB
    object_textures: tuple[tuple[str, RGB] | None, ...]
    """Per object: None (plain colour), or (pattern, second colour) of its texture."""
    light_tint: tuple[RGB, ...]
    """Per light: factors on its diffuse colour (applied by the environment after loading)."""


def draw_appearance(
    rng: np.random.Generator, strength: float, n_objects: int, n_lights: int = 2
) -> Appearance:
    """A random look whose colours lie ``strength`` (0-1) of the way from the nominal ones to
    uniformly random ones; patterned textures and tints appear with probability ``strength``."""
    f = float(strength)

    def colour(nominal: RGB) -> RGB:
        c = (1 - f) * np.asarray(nominal) + f * rng.uniform(0.05, 0.95, size=3)
        return tuple(float(v) for v in c)  # type: ignore[return-value]

    def pattern() -> str:
        return TEXTURES[int(rng.integers(1, 3))] if rng.random() < f else "flat"

    table1 = colour(TABLE_RGB)
    table2 = colour(TABLE_RGB)
    kind = pattern()
    floor = (colour(FLOOR_RGB[0]), colour(FLOOR_RGB[1]))
    objects = tuple(
        (pattern(), colour((0.5, 0.5, 0.5))) if rng.random() < 0.5 * f else None
        for _ in range(n_objects)
    )
    tint = tuple(
        tuple(float(v) for v in rng.uniform(1 - 0.3 * f, 1 + 0.3 * f, size=3))
        for _ in range(n_lights)
    )
    return Appearance(
        table=(table1, table2),
        table_texture=kind,
        table_marks=float(rng.uniform(0, 0.2 * f)),
        floor=floor,
        bin=colour(BIN_RGB),
        arm=colour(ARM_RGB),
        object_textures=objects,
        light_tint=tint,  # type: ignore[arg-type]
    )


def _rgb(c: RGB) -> str:
    return " ".join(f"{v:.3f}" for v in c)


def look_at_quat(pos: np.ndarray, target: np.ndarray) -> np.ndarray:
    """MuJoCo camera quaternion (w, x, y, z): camera looks along its -z, y up."""
    z = pos - target
    z = z / np.linalg.norm(z)
    x = np.cross([0.0, 0.0, 1.0], z)
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    return mat2quat(np.stack([x, y, z], axis=1))


def sample_objects(
    cfg: SceneConfig, rng: np.random.Generator, top_z: float = 0.0
) -> list[ObjectSpec]:
    """K objects with random shape, size, colour and non-overlapping pose on the table, whose
    top is at ``top_z``."""
    lo, hi = cfg.object_half_size
    objs: list[ObjectSpec] = []
    placed: list[tuple[float, float, float]] = []  # (x, y, radius)
    for i in range(cfg.n_objects):
        shape = "box" if rng.random() < 0.5 else "cylinder"
        if shape == "box":
            hs = tuple(float(v) for v in rng.uniform(lo, hi, size=3))
        else:
            r = float(rng.uniform(lo, hi))
            hs = (r, r, float(rng.uniform(lo, hi)))
        rgba = (*(float(c) for c in rng.uniform(0.1, 0.95, size=3)), 1.0)
        radius = float(np.hypot(hs[0], hs[1]))
        for _ in range(1000):
            x = float(rng.uniform(*LAYOUT.object_x))
            y = float(rng.uniform(*LAYOUT.object_y))
            if all(np.hypot(x - px, y - py) > radius + pr + 0.03 for px, py, pr in placed):
                break
        else:  # pragma: no cover - the region fits six objects with a wide margin
            raise RuntimeError("could not place objects without overlap")
        placed.append((x, y, radius))
        objs.append(
            ObjectSpec(
                f"obj{i}",
                shape,
                hs,
                rgba,
                (x, y, top_z + hs[2] + 0.001),
                float(rng.uniform(-np.pi, np.pi)),
            )
        )
    return objs


def episode_world_objects(seed: int, cfg: SceneConfig | None = None) -> list[WorldObject]:
    """The objects of the MuJoCo episode ``seed`` (what ``WmEnv.reset(seed)`` places first), as
    Gazebo world objects: ``wm gazebo world --seed`` and ``sim:=gazebo`` use them, so both
    simulators start an episode seed from the same table."""
    objects = sample_objects(cfg or SceneConfig(), np.random.default_rng(seed))
    return [WorldObject(o.name, o.shape, o.half_size, o.rgba, o.pos, o.yaw) for o in objects]


def _bin_xml(cell: Workcell) -> str:
    b, z0 = cell.bin, cell.table.top_z
    cx, cy = b.center
    h, t, w = b.inner_half, b.wall_thickness, b.wall_height
    walls = [
        ("bin_floor", (cx, cy, z0 + t / 2), (h + t, h + t, t / 2)),
        ("bin_wall_n", (cx, cy + h + t / 2, z0 + w / 2), (h + t, t / 2, w / 2)),
        ("bin_wall_s", (cx, cy - h - t / 2, z0 + w / 2), (h + t, t / 2, w / 2)),
        ("bin_wall_e", (cx + h + t / 2, cy, z0 + w / 2), (t / 2, h, w / 2)),
        ("bin_wall_w", (cx - h - t / 2, cy, z0 + w / 2), (t / 2, h, w / 2)),
    ]
    return "\n".join(
        f'<geom name="{n}" class="bin" type="box" pos="{p[0]} {p[1]} {p[2]}" '
        f'size="{s[0]} {s[1]} {s[2]}"/>'
        for n, p, s in walls
    )


def camera_xml(cell: Workcell, name: str = "scene_cam") -> str:
    """The cell's camera as a MuJoCo ``<camera>``: pose from ``T_world_cam``, vertical field of
    view from fy. MuJoCo's camera is a centred pinhole with square pixels and no distortion, so
    a cell whose camera is not one cannot be simulated (ConfigError)."""
    cam = cell.camera
    k = cam.k_matrix
    centred = abs(k[0, 2] - cam.width / 2) < 0.5 and abs(k[1, 2] - cam.height / 2) < 0.5
    if not (centred and abs(k[0, 0] - k[1, 1]) < 1e-6 * k[1, 1] and not any(cam.D)):
        raise ConfigError(
            f"{cell.source or cell.name}: the MuJoCo scene needs a centred square-pixel camera "
            "without distortion (cx = width/2, cy = height/2, fx = fy, D = 0)"
        )
    t = cam.pose
    # OpenCV optical frame (y down, z forward) -> MuJoCo camera frame (y up, looks along -z)
    quat = mat2quat(t[:3, :3] @ np.diag([1.0, -1.0, -1.0]))
    fovy = np.rad2deg(2 * np.arctan(0.5 * cam.height / k[1, 1]))
    return (
        f'<camera name="{name}" pos="{" ".join(repr(float(v)) for v in t[:3, 3])}" '
        f'quat="{" ".join(repr(float(v)) for v in quat)}" fovy="{float(fovy)!r}"/>'
    )


def _object_xml(o: ObjectSpec, textured: bool = False) -> str:
    """The object's body; ``textured``: its geom wears the material ``{name}_mat``
    (``_appearance_assets``) instead of its plain colour."""
    q = (np.cos(o.yaw / 2), 0.0, 0.0, np.sin(o.yaw / 2))
    size = " ".join(f"{v:.5f}" for v in (o.half_size if o.shape == "box" else o.half_size[1:]))
    vol = (
        8 * np.prod(o.half_size)
        if o.shape == "box"
        else np.pi * o.half_size[0] ** 2 * 2 * o.half_size[2]
    )
    mass = max(0.03, 400.0 * vol)  # light plastic/foam-like objects
    look = (
        f'material="{o.name}_mat"' if textured else f'rgba="{" ".join(f"{c:.3f}" for c in o.rgba)}"'
    )
    return (
        f'<body name="{o.name}" pos="{o.pos[0]:.5f} {o.pos[1]:.5f} {o.pos[2]:.5f}" '
        f'quat="{q[0]:.6f} 0 0 {q[3]:.6f}"><freejoint name="{o.name}_free"/>'
        f'<geom name="{o.name}_geom" class="object" type="{o.shape}" size="{size}" '
        f'mass="{mass:.4f}" {look}/></body>'
    )


def _appearance_assets(look: Appearance, objects: list[ObjectSpec]) -> str:
    """Textures and materials of a randomised look: the table's, and the textured objects'."""
    (t1, t2), kind = look.table, look.table_texture
    marks = (
        f' mark="random" random="{look.table_marks:.4f}" markrgb="{_rgb(t2)}"'
        if look.table_marks > 0
        else ""
    )
    out = [
        f'<texture name="dr_table" type="2d" builtin="{kind}" rgb1="{_rgb(t1)}" '
        f'rgb2="{_rgb(t2)}" width="256" height="256"{marks}/>',
        '<material name="dr_table" texture="dr_table" texrepeat="4 4" rgba="1 1 1 1"/>',
    ]
    for o, tex in zip(objects, look.object_textures, strict=False):
        if tex is not None:
            out.append(
                f'<texture name="{o.name}_tex" type="cube" builtin="{tex[0]}" '
                f'rgb1="{_rgb(o.rgba[:3])}" rgb2="{_rgb(tex[1])}" width="32" height="32"/>'
                f'<material name="{o.name}_mat" texture="{o.name}_tex" rgba="1 1 1 1"/>'
            )
    return "\n    ".join(out)


BOARD_PLATE_OFFSET = (-0.15, 0.0, 0.02)
"""Where a calibration board plate sits in the suction cup's frame (m): beside the cup and just
below its tip, where the wrist does not hide it from the scene camera."""


def board_plate_xml(size_m: tuple[float, float]) -> tuple[str, str]:
    """(asset XML, geom XML) of a calibration board plate carrying the texture
    ``calib_board.png`` (pass its bytes as the model's asset), face up when the tool points
    down; visual only (no contacts)."""
    w, h = size_m
    asset = (
        '<texture name="calib_board" type="2d" file="calib_board.png"/>'
        '<material name="calib_board" texture="calib_board" texuniform="false"/>'
    )
    x, y, z = BOARD_PLATE_OFFSET
    geom = (
        f'<geom name="calib_board" type="box" size="{w / 2} {h / 2} 0.001" pos="{x} {y} {z}" '
        'quat="0 1 0 0" material="calib_board" contype="0" conaffinity="0" mass="0.001"/>'
    )
    return asset, geom


def build_scene_xml(
    cfg: SceneConfig,
    objects: list[ObjectSpec],
    cell: Workcell | None = None,
    board_m: tuple[float, float] | None = None,
    look: Appearance | None = None,
) -> str:
    """The complete MJCF for one episode, its fixed geometry built from the cell (default:
    ``configs/cells/sim.yaml``). ``board_m``: also a calibration board plate of that size on
    the tool (the calibration scene; see ``wm_core.sim.calibration``). ``look``: a randomised
    appearance (default: the nominal one)."""
    cell = cell or sim_cell()
    arm = load_arm()
    board_asset, board_geom = board_plate_xml(board_m) if board_m else ("", "")
    fb = 1024 if board_m else 640  # offscreen framebuffer: calibration images are 1024 px
    tx, ty, th, z0 = cell.table.x, cell.table.y, cell.table.thickness, cell.table.top_z
    table_rgb, bin_rgb, arm_rgb, floor = TABLE_RGB, BIN_RGB, ARM_RGB, FLOOR_RGB
    look_assets, table_look, textured = "", "", [False] * len(objects)
    if look is not None:
        bin_rgb, arm_rgb, floor = look.bin, look.arm, look.floor
        look_assets = _appearance_assets(look, objects)
        table_look = ' material="dr_table" rgba="1 1 1 1"'
        textured = [t is not None for t in look.object_textures]
    cup = '<site name="tool_site" pos="0 0 0" size="0.004" rgba="1 0 0 0.5"/>'
    arm_xml = arm_body_xml(
        arm,
        base_pos=cell.arm.base_xyz,
        base_rpy=cell.arm.base_rpy,
        extra={
            "tool0": '<camera name="wrist_cam" pos="0 -0.06 0.02" quat="0 1 0 0" fovy="75"/>',
            "suction_cup": board_geom + cup,
        },
    )
    return f"""
<mujoco model="wm_table_clearing">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{cfg.physics_dt}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual><global offwidth="{fb}" offheight="{fb}"/><quality shadowsize="1024"/></visual>
  <default>
    <default class="arm"><geom contype="1" conaffinity="2" rgba="{_rgb(arm_rgb)} 1"
        condim="3" friction="1 0.01 0.001"/></default>
    <default class="arm_base"><geom contype="0" conaffinity="0" rgba="0.3 0.3 0.35 1"/></default>
    <default class="table"><geom contype="2" conaffinity="7" rgba="{_rgb(table_rgb)} 1"/></default>
    <default class="bin"><geom contype="2" conaffinity="7" rgba="{_rgb(bin_rgb)} 1"/></default>
    <default class="object"><geom contype="4" conaffinity="7" condim="3"
        friction="1.0 0.02 0.001" solref="0.005 1"/></default>
  </default>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1="{_rgb(floor[0])}"
        rgb2="{_rgb(floor[1])}" width="256" height="256"/>
    <material name="floor" texture="grid" texrepeat="6 6"/>
    {look_assets}
    {board_asset}
  </asset>
  <worldbody>
    <light name="key" pos="0.6 -0.6 2.0" dir="-0.2 0.3 -1" diffuse="0.7 0.7 0.7"
        specular="0.2 0.2 0.2"/>
    <light name="fill" pos="-0.6 0.8 1.8" dir="0.3 -0.3 -1" diffuse="0.35 0.35 0.35"
        specular="0 0 0" castshadow="false"/>
    <geom name="floor" type="plane" pos="0 0 -0.75" size="3 3 0.1" material="floor"
        contype="2" conaffinity="4"/>
    <geom name="table" class="table" type="box"{table_look}
        pos="{(tx[0] + tx[1]) / 2} {(ty[0] + ty[1]) / 2} {z0 - th / 2}"
        size="{(tx[1] - tx[0]) / 2} {(ty[1] - ty[0]) / 2} {th / 2}"/>
    {_bin_xml(cell)}
    {camera_xml(cell)}
    {arm_xml}
    {"".join(_object_xml(o, t) for o, t in zip(objects, textured, strict=True))}
  </worldbody>
  <actuator>
    {arm_actuators_xml(arm)}
    <adhesion name="suction" body="suction_cup" ctrlrange="0 1" gain="{cfg.suction_gain}"/>
  </actuator>
</mujoco>
"""
