"""The work cell: one description of the robot's surroundings, read by everything.

A cell file (YAML, ``configs/cells/*.yaml``) holds the table, the bin, the tool workspace,
keep-out and obstacle boxes, the arm's base pose and joint names, and the scene camera
(intrinsics at its native resolution, distortion and its pose ``T_world_cam`` in the OpenCV
optical convention: x right, y down, z forward). The MuJoCo scene is *built from* it, and the
brain (task layer, planner costs, safety filter, object readout) reads it exactly as it would
on a real arm. Calibration (``wm calibrate``) writes its camera part.

Frames: the world frame's z is up and z = ``table.top_z`` is the table top; with the default
base pose the arm's base frame is the world frame. Units: metres, radians.

``load_cell(path)`` validates everything and raises :class:`~wm_core.config.ConfigError` with
one line naming the file and the field. ``sim_cell()`` is ``configs/cells/sim.yaml``, the
MuJoCo world's own cell.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from wm_core.config import ConfigError, check_range, read_yaml

Box3 = tuple[tuple[float, float, float], tuple[float, float, float]]

REPO_CELLS = Path(__file__).resolve().parents[1] / "configs" / "cells"
SIM_CELL_FILE = REPO_CELLS / "sim.yaml"
PYBULLET_CELL_FILE = REPO_CELLS / "pybullet.yaml"
"""The PyBullet world's own cell (``wm up pybullet``), deliberately unlike the MuJoCo one."""

ARM_REACH = 0.95
"""Largest horizontal distance (m) from the base axis at which the tool can still point down
at table height, for the bundled arm (UR5e-like: 0.85 m to the flange plus the cup, with
margin for the wrist). A bin or workspace further out is a configuration error."""

MIN_TABLE_VISIBLE = 0.5
"""Fraction of the table-top's sampled points the camera must see (in front, inside the
image); less means the camera was not set up to look at this table."""


def _finite(name: str, values: Any, n: int | None = None) -> tuple[float, ...]:
    try:
        v = tuple(float(x) for x in values)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={values!r} must be a list of numbers") from None
    if n is not None and len(v) != n:
        raise ConfigError(f"{name}={values!r} must have {n} numbers, got {len(v)}")
    if not all(math.isfinite(x) for x in v):
        raise ConfigError(f"{name}={values!r} must be finite numbers")
    return v


def _interval(name: str, values: Any) -> tuple[float, float]:
    lo, hi = _finite(name, values, 2)
    if not lo < hi:
        raise ConfigError(f"{name}={[lo, hi]} must be [low, high] with low < high")
    return lo, hi


def _box(name: str, box: Any) -> Box3:
    try:
        lo, hi = box
    except (TypeError, ValueError):
        raise ConfigError(
            f"{name}={box!r} must be [[xmin, ymin, zmin], [xmax, ymax, zmax]]"
        ) from None
    lo, hi = _finite(f"{name}[0]", lo, 3), _finite(f"{name}[1]", hi, 3)
    if not all(a < b for a, b in zip(lo, hi, strict=True)):
        raise ConfigError(f"{name}={[list(lo), list(hi)]} must have min < max on every axis")
    return lo, hi


@dataclass(frozen=True)
class Table:
    """The table top: an axis-aligned rectangle in the world frame."""

    x: tuple[float, float]
    """Extent along world x (m), [low, high]."""
    y: tuple[float, float]
    """Extent along world y (m), [low, high]."""
    top_z: float = 0.0
    """Height of the table top (m)."""
    thickness: float = 0.04
    """Slab thickness (m), for the simulator's geometry."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "x", _interval("table.x", self.x))
        object.__setattr__(self, "y", _interval("table.y", self.y))
        check_range("table.top_z", self.top_z, -2.0, 2.0)
        check_range("table.thickness", self.thickness, 0.001, 1.0)


@dataclass(frozen=True)
class Bin:
    """The open box objects are cleared into, standing on the table."""

    center: tuple[float, float]
    """Centre (m) of the bin's floor in world xy."""
    inner_half: float
    """Half the inner side (m) of the square bin."""
    wall_thickness: float
    """Wall thickness (m)."""
    wall_height: float
    """Wall height (m) above the table top."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "center", _finite("bin.center", self.center, 2))
        check_range("bin.inner_half", self.inner_half, 0.03, 1.0)
        check_range("bin.wall_thickness", self.wall_thickness, 0.001, 0.2)
        check_range("bin.wall_height", self.wall_height, 0.005, 1.0)

    def wall_boxes(self, top_z: float) -> tuple[Box3, ...]:
        """The four walls as axis-aligned boxes ((lo), (hi)) in the world frame."""
        cx, cy = self.center
        h, t, z1 = self.inner_half, self.wall_thickness, top_z + self.wall_height
        o = h + t
        return (
            ((cx - o, cy - o, top_z), (cx - h, cy + o, z1)),
            ((cx + h, cy - o, top_z), (cx + o, cy + o, z1)),
            ((cx - o, cy - o, top_z), (cx + o, cy - h, z1)),
            ((cx - o, cy + h, top_z), (cx + o, cy + o, z1)),
        )

    def contains_xy(self, xy: np.ndarray, margin: float = 0.0) -> bool:
        """Whether a world xy point lies over the bin (walls included, plus ``margin``)."""
        half = self.inner_half + self.wall_thickness + margin
        return abs(xy[0] - self.center[0]) < half and abs(xy[1] - self.center[1]) < half


@dataclass(frozen=True)
class Arm:
    """Where the arm stands and what its joints are called."""

    joint_names: tuple[str, ...]
    """The six actuated joints, in order (they must match the URDF)."""
    home_q: tuple[float, ...]
    """Joint positions (rad) the arm starts from and returns to."""
    base_xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Position (m) of the arm's base frame in the world."""
    base_rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Orientation (rad, roll-pitch-yaw, fixed axes x-y-z) of the base frame in the world."""

    def __post_init__(self) -> None:
        names = tuple(self.joint_names) if not isinstance(self.joint_names, str) else None
        if names is None or len(names) != 6 or not all(isinstance(n, str) and n for n in names):
            raise ConfigError(f"arm.joint_names={self.joint_names!r} must be 6 joint names")
        if len(set(names)) != 6:
            raise ConfigError(f"arm.joint_names={list(names)} has a duplicate name")
        object.__setattr__(self, "joint_names", names)
        object.__setattr__(self, "home_q", _finite("arm.home_q", self.home_q, 6))
        object.__setattr__(self, "base_xyz", _finite("arm.base_xyz", self.base_xyz, 3))
        object.__setattr__(self, "base_rpy", _finite("arm.base_rpy", self.base_rpy, 3))

    @property
    def T_world_base(self) -> np.ndarray:  # noqa: N802 (the frame convention)
        """[4, 4] pose of the arm's base frame in the world."""
        r, p, y = self.base_rpy
        rx = np.array([[1, 0, 0], [0, np.cos(r), -np.sin(r)], [0, np.sin(r), np.cos(r)]])
        ry = np.array([[np.cos(p), 0, np.sin(p)], [0, 1, 0], [-np.sin(p), 0, np.cos(p)]])
        rz = np.array([[np.cos(y), -np.sin(y), 0], [np.sin(y), np.cos(y), 0], [0, 0, 1]])
        t = np.eye(4)
        t[:3, :3] = rz @ ry @ rx
        t[:3, 3] = self.base_xyz
        return t


@dataclass(frozen=True)
class Camera:
    """The scene camera: pinhole intrinsics at its native resolution, and its pose."""

    width: int
    """Image width (px) at which ``K`` and ``D`` hold."""
    height: int
    """Image height (px)."""
    K: tuple[float, ...]  # noqa: N815 (the calibration convention)
    """Intrinsic matrix, 9 numbers row-major: fx 0 cx / 0 fy cy / 0 0 1 (px)."""
    T_world_cam: tuple[tuple[float, ...], ...]  # noqa: N815
    """[4, 4] pose of the OpenCV optical frame (x right, y down, z forward) in the world."""
    D: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)  # noqa: N815
    """Distortion coefficients of ``distortion_model`` (plumb_bob: k1 k2 p1 p2 k3)."""
    distortion_model: str = "plumb_bob"
    """The ROS distortion model name; only ``plumb_bob`` is supported."""
    frame_id: str = "camera_optical_frame"
    """TF frame of the camera's optical frame."""

    def __post_init__(self) -> None:
        check_range("camera.width", self.width, 8, 16384, integer=True)
        check_range("camera.height", self.height, 8, 16384, integer=True)
        k = _finite("camera.K", self.K, 9)
        if k[1] != 0 or k[3] != 0 or k[6:] != (0.0, 0.0, 1.0):
            raise ConfigError(f"camera.K={list(k)} must be [fx, 0, cx, 0, fy, cy, 0, 0, 1]")
        if k[0] <= 0 or k[4] <= 0:
            raise ConfigError(f"camera.K={list(k)}: fx and fy must be > 0")
        object.__setattr__(self, "K", k)
        if self.distortion_model != "plumb_bob":
            raise ConfigError(
                f"camera.distortion_model={self.distortion_model!r} must be 'plumb_bob'"
            )
        object.__setattr__(self, "D", _finite("camera.D", self.D, 5))
        try:
            rows = tuple(
                _finite(f"camera.T_world_cam[{i}]", r, 4) for i, r in enumerate(self.T_world_cam)
            )
        except TypeError:
            raise ConfigError(f"camera.T_world_cam={self.T_world_cam!r} must be 4x4") from None
        t = np.array(rows)
        if t.shape != (4, 4) or not np.allclose(t[3], [0, 0, 0, 1]):
            raise ConfigError("camera.T_world_cam must be 4x4 with last row [0, 0, 0, 1]")
        r = t[:3, :3]
        if not np.allclose(r.T @ r, np.eye(3), atol=1e-5) or np.linalg.det(r) < 0.999:
            raise ConfigError("camera.T_world_cam: its 3x3 block is not a rotation")
        object.__setattr__(self, "T_world_cam", rows)

    @property
    def k_matrix(self) -> np.ndarray:
        """[3, 3] intrinsics at the native resolution."""
        return np.array(self.K).reshape(3, 3)

    @property
    def pose(self) -> np.ndarray:
        """[4, 4] ``T_world_cam``."""
        return np.array(self.T_world_cam)

    def k_for(self, width: int, height: int | None = None) -> np.ndarray:
        """[3, 3] intrinsics of this camera's image resized to ``width`` x ``height`` (the
        model's square input squashes the image: x and y scale separately)."""
        height = width if height is None else height
        sx, sy = width / self.width, height / self.height
        return np.diag([sx, sy, 1.0]) @ self.k_matrix

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points [..., 3] -> pixel (u, v) at native resolution and depth: [..., 3]
        (pinhole; distortion is left to the image pipeline)."""
        t = self.pose
        pc = (np.asarray(points, float) - t[:3, 3]) @ t[:3, :3]  # [..., 3] camera frame
        k = self.k_matrix
        z = pc[..., 2:3]
        uv = pc[..., :2] / np.where(np.abs(z) < 1e-9, 1e-9, z) * [k[0, 0], k[1, 1]] + k[:2, 2]
        return np.concatenate([uv, z], axis=-1)


@dataclass(frozen=True)
class Workcell:
    """Everything the brain knows about the cell (see the module docstring)."""

    table: Table
    """The table top."""
    bin: Bin
    """The bin objects are cleared into."""
    workspace_lo: tuple[float, float, float]
    """Low corner (m) of the box the tool target is clipped to."""
    workspace_hi: tuple[float, float, float]
    """High corner (m) of the tool workspace box."""
    arm: Arm
    """The arm's joints, home pose and base pose."""
    camera: Camera
    """The scene camera."""
    keepout_boxes: tuple[Box3, ...] = ()
    """Boxes no part of the arm may enter (e.g. where a person may stand)."""
    obstacle_boxes: tuple[Box3, ...] | None = None
    """Fixed obstacles no part of the arm may enter. None: the bin's four walls."""
    name: str = "cell"
    """A name for reports and logs."""
    source: str = field(default="", compare=False)
    """The file it was loaded from (set by :func:`load_cell`)."""

    def __post_init__(self) -> None:
        lo = _finite("workspace_lo", self.workspace_lo, 3)
        hi = _finite("workspace_hi", self.workspace_hi, 3)
        if not all(a < b for a, b in zip(lo, hi, strict=True)):
            raise ConfigError(f"workspace_lo={list(lo)} must be below workspace_hi={list(hi)}")
        object.__setattr__(self, "workspace_lo", lo)
        object.__setattr__(self, "workspace_hi", hi)
        for name in ("keepout_boxes", "obstacle_boxes"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, list | tuple):
                raise ConfigError(f"{name}={value!r} must be a list of boxes [[lo xyz], [hi xyz]]")
        object.__setattr__(
            self,
            "keepout_boxes",
            tuple(_box(f"keepout_boxes[{i}]", b) for i, b in enumerate(self.keepout_boxes)),
        )
        if self.obstacle_boxes is not None:
            object.__setattr__(
                self,
                "obstacle_boxes",
                tuple(_box(f"obstacle_boxes[{i}]", b) for i, b in enumerate(self.obstacle_boxes)),
            )
        self._check_reach()
        self._check_camera_sees_table()

    # ------------------------------------------------------------------ derived geometry
    @property
    def obstacles(self) -> tuple[Box3, ...]:
        """The fixed obstacle boxes: as given, else the bin's walls."""
        if self.obstacle_boxes is not None:
            return self.obstacle_boxes
        return self.bin.wall_boxes(self.table.top_z)

    @property
    def base_xy(self) -> np.ndarray:
        return np.array(self.arm.base_xyz[:2])

    def _check_reach(self) -> None:
        bx, by = self.arm.base_xyz[:2]
        cx, cy = self.bin.center
        d = math.hypot(cx - bx, cy - by)
        if d > ARM_REACH - self.bin.inner_half:
            raise ConfigError(
                f"bin.center={list(self.bin.center)} is {d:.2f} m from the arm's base: out of "
                f"reach (the bin's far half must be within {ARM_REACH} m)"
            )

    def _check_camera_sees_table(self) -> None:
        xs = np.linspace(*self.table.x, 9)
        ys = np.linspace(*self.table.y, 9)
        grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
        pts = np.concatenate([grid, np.full((len(grid), 1), self.table.top_z)], axis=1)
        uvz = self.camera.project(pts)  # [81, 3]
        seen = (
            (uvz[:, 2] > 0.05)
            & (uvz[:, 0] >= 0)
            & (uvz[:, 0] < self.camera.width)
            & (uvz[:, 1] >= 0)
            & (uvz[:, 1] < self.camera.height)
        )
        if seen.mean() < MIN_TABLE_VISIBLE and not _sees_centre(uvz[len(uvz) // 2], self.camera):
            raise ConfigError(
                f"camera: sees {seen.mean():.0%} of the table top (needs the table's centre "
                f"or {MIN_TABLE_VISIBLE:.0%} of it): check camera.T_world_cam and camera.K"
            )

    def with_camera(self, camera: Camera) -> Workcell:
        """The same cell seen by another camera (after a calibration)."""
        return replace(self, camera=camera)

    def with_table_height(self, top_z: float) -> Workcell:
        """The same cell with its table top at ``top_z``: the workspace's and the given
        obstacle boxes' heights move with it (the bin's walls stand on the table anyway); the
        arm, the camera and the keep-out boxes stay."""
        dz = top_z - self.table.top_z

        def up(p: tuple[float, float, float]) -> tuple[float, float, float]:
            return (p[0], p[1], p[2] + dz)

        obstacles = self.obstacle_boxes
        if obstacles is not None:
            obstacles = tuple((up(lo), up(hi)) for lo, hi in obstacles)
        return replace(
            self,
            table=replace(self.table, top_z=top_z),
            workspace_lo=up(self.workspace_lo),
            workspace_hi=up(self.workspace_hi),
            obstacle_boxes=obstacles,
        )


def _sees_centre(uvz: np.ndarray, cam: Camera) -> bool:
    return bool(uvz[2] > 0.05 and 0 <= uvz[0] < cam.width and 0 <= uvz[1] < cam.height)


# ---------------------------------------------------------------------- loading
_PARTS = {"table": Table, "bin": Bin, "arm": Arm, "camera": Camera}


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    allowed = {f.name for f in fields(cls) if f.name != "source"}
    unknown = sorted(set(data) - allowed, key=repr)  # YAML keys of any type (None, ints)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; allowed: {sorted(allowed)}")
    kwargs = {}
    for key, value in data.items():
        if key in _PARTS and cls is Workcell:
            value = _build(_PARTS[key], value, f"{where}.{key}")
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a missing field
        raise ConfigError(f"{where}: {exc}") from None


def cell_from_mapping(data: Any, source: str = "cell") -> Workcell:
    """A :class:`Workcell` from a parsed YAML mapping; every error names ``source`` and the
    field."""
    try:
        cell = _build(Workcell, data, source)
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(source) else f"{source}: {msg}") from None
    return replace(cell, source=source)


def load_cell(path: str | Path) -> Workcell:
    """Load and validate a cell file (:class:`ConfigError`, one line, on any problem)."""
    path = Path(path)
    return cell_from_mapping(read_yaml(path, "cell file"), str(path))


@functools.lru_cache(maxsize=1)
def sim_cell() -> Workcell:
    """The MuJoCo world's cell (``configs/cells/sim.yaml``)."""
    return load_cell(SIM_CELL_FILE)


def cell_to_mapping(cell: Workcell) -> dict:
    """The cell as plain YAML data (what :func:`cell_from_mapping` reads back)."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, np.floating | np.integer):
            return v.item()
        return v

    out: dict[str, Any] = {}
    for f in fields(cell):
        value = getattr(cell, f.name)
        if f.name == "source" or (f.name == "obstacle_boxes" and value is None):
            continue
        if f.name in _PARTS:
            value = {g.name: plain(getattr(value, g.name)) for g in fields(value)}
        out[f.name] = plain(value)
    return out


def write_cell(cell: Workcell, path: str | Path, header: str = "") -> Path:
    """Write ``cell`` as a cell file (``header``: comment lines on top); -> the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    comments = "".join(f"# {line}\n" for line in header.splitlines())
    text = yaml.safe_dump(cell_to_mapping(cell), sort_keys=False, default_flow_style=None)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(comments + text)
    tmp.replace(path)
    return path


def cell_or_default(path: str | Path | None) -> Workcell:
    """``load_cell(path)``, or the sim cell for None / an empty string."""
    return sim_cell() if not path else load_cell(path)
