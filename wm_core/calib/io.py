"""Calibration files: ROS camera_info YAML, hand-eye samples YAML, hand-eye result YAML.

camera_info (the camera_calibration_parsers format ROS drivers load)::

    image_width: 640
    image_height: 480
    camera_name: scene_cam
    camera_matrix: {rows: 3, cols: 3, data: [fx, 0, cx, 0, fy, cy, 0, 0, 1]}
    distortion_model: plumb_bob
    distortion_coefficients: {rows: 1, cols: 5, data: [k1, k2, p1, p2, k3]}
    rectification_matrix: {rows: 3, cols: 3, data: [1, 0, 0, 0, 1, 0, 0, 0, 1]}
    projection_matrix: {rows: 3, cols: 4, data: [fx', 0, cx', 0, 0, fy', cy', 0, 0, 0, 1, 0]}

Hand-eye samples (what ``wm calibrate handeye --samples`` reads)::

    camera_info: camera.yaml   # intrinsics the board poses were measured with; a path
                               # relative to this file (or absolute)
    tool_frame: tool0          # optional (default tool0): the robot's tool frame name
    samples:                   # at least 3, recommended >= 10 with varied tool rotations
      - T_base_tool:           # tool pose in the robot base (= world) frame, from FK
          xyz: [0.45, 0.02, 0.31]          # metres
          quat_xyzw: [1.0, 0.0, 0.0, 0.0]  # unit quaternion (x, y, z, w), ROS order
        T_cam_board:           # board pose in the camera optical frame, as solvePnP gives it
          rvec: [0.1, -2.9, 0.2]           # rotation vector, radians
          tvec: [0.05, -0.02, 0.93]        # metres
      - ...

Hand-eye result (what ``wm calibrate handeye --out`` writes; the work-cell loader reads it)::

    camera:
      T_world_cam: [[r00, r01, r02, tx], [...], [...], [0, 0, 0, 1]]  # eye-to-hand
      # or T_tool_cam (eye-in-hand). OpenCV optical frame (x right, y down, z forward),
      # metres; the robot base frame IS the world frame.
    static_transform:          # for tf2_ros static_transform_publisher
      parent_frame: world      # eye-in-hand: the tool frame (samples' tool_frame)
      child_frame: camera_optical_frame
      xyz: [x, y, z]
      quat_xyzw: [qx, qy, qz, qw]
    handeye: {mode: eye-to-hand, method: tsai, samples: 15,
              residual_translation_mm: ..., residual_rotation_deg: ...}
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from wm_core.calib.handeye import HandEyeResult, HandEyeSamples
from wm_core.calib.intrinsics import CameraIntrinsics, projection_matrix
from wm_core.calib.transforms import (
    T_from_rvec_tvec,
    T_from_xyz_quat,
    is_rigid,
    rvec_tvec_from_T,
    xyz_quat_from_T,
)
from wm_core.config import ConfigError, read_yaml

CAMERA_CHILD_FRAME = "camera_optical_frame"
WORLD_FRAME = "world"
QUAT_NORM_TOL = 0.01
"""Largest accepted | |q| - 1 | of a samples-file quaternion (it is then normalised)."""


def _load_yaml(path: Path, what: str) -> Any:
    return read_yaml(path, what)  # size, UTF-8, nesting and YAML errors: one line each


def _flow_lists(data: Any) -> str:
    """YAML with lists of scalars on one line (as ROS writes camera_info)."""

    class _Dumper(yaml.SafeDumper):
        pass

    def rep_list(dumper: yaml.SafeDumper, value: list) -> yaml.Node:
        flow = all(not isinstance(v, list | dict) for v in value) or all(
            isinstance(v, list) for v in value
        )
        return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)

    _Dumper.add_representer(list, rep_list)
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=1000)


def _floats(a: np.ndarray) -> list:
    return np.asarray(a, dtype=float).tolist()


# ---------------------------------------------------------------------------------------------
# camera_info


def write_camera_info(path: str | Path, intr: CameraIntrinsics) -> Path:
    """Write ``intr`` as a ROS camera_info YAML; returns the path."""
    path = Path(path)
    data = {
        "image_width": intr.width,
        "image_height": intr.height,
        "camera_name": intr.name,
        "camera_matrix": {"rows": 3, "cols": 3, "data": _floats(intr.K.reshape(-1))},
        "distortion_model": "plumb_bob",
        "distortion_coefficients": {"rows": 1, "cols": 5, "data": _floats(intr.D)},
        "rectification_matrix": {"rows": 3, "cols": 3, "data": _floats(np.eye(3).reshape(-1))},
        "projection_matrix": {
            "rows": 3,
            "cols": 4,
            "data": _floats(projection_matrix(intr).reshape(-1)),
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_flow_lists(data))
    return path


def _matrix(data: dict, key: str, rows: int, cols: int, where: str) -> np.ndarray:
    m = data.get(key)
    if not isinstance(m, dict):
        raise ConfigError(f"{where}: {key} must be a mapping with rows, cols and data")
    for k, want in (("rows", rows), ("cols", cols)):
        if m.get(k) != want:
            raise ConfigError(f"{where}: {key}.{k}={m.get(k)!r}, expected {want}")
    values = m.get("data")
    if not isinstance(values, list) or len(values) != rows * cols:
        n = len(values) if isinstance(values, list) else type(values).__name__
        raise ConfigError(f"{where}: {key}.data has {n} values, expected {rows * cols}")
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ConfigError(f"{where}: {key}.data[{i}]={v!r} is not a finite number")
    return np.asarray(values, dtype=float).reshape(rows, cols)


def read_camera_info(path: str | Path) -> CameraIntrinsics:
    """Read and validate a ROS camera_info YAML (plumb_bob, 5 coefficients).

    Missing keys, wrong sizes, non-finite numbers, non-positive focal lengths and bad YAML
    raise a one-line ConfigError naming the file and the field.
    """
    path = Path(path)
    where = f"camera_info {str(path)!r}"
    data = _load_yaml(path, "camera_info")
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    required = (
        "image_width",
        "image_height",
        "camera_name",
        "camera_matrix",
        "distortion_model",
        "distortion_coefficients",
    )
    missing = [k for k in required if k not in data]
    if missing:
        raise ConfigError(f"{where}: missing field(s) {missing}")
    for k in ("image_width", "image_height"):
        v = data[k]
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ConfigError(f"{where}: {k}={v!r} must be a positive integer")
    name = data["camera_name"]
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: camera_name={name!r} must be a non-empty string")
    if data["distortion_model"] != "plumb_bob":
        raise ConfigError(
            f"{where}: distortion_model={data['distortion_model']!r}, only plumb_bob is supported"
        )
    K = _matrix(data, "camera_matrix", 3, 3, where)
    D = _matrix(data, "distortion_coefficients", 1, 5, where).reshape(5)
    if "rectification_matrix" in data:
        _matrix(data, "rectification_matrix", 3, 3, where)
    if "projection_matrix" in data:
        _matrix(data, "projection_matrix", 3, 4, where)
    if not (K[0, 0] > 0 and K[1, 1] > 0):
        raise ConfigError(
            f"{where}: camera_matrix focal lengths fx={K[0, 0]:g}, fy={K[1, 1]:g} must be > 0"
        )
    try:
        return CameraIntrinsics(name, data["image_width"], data["image_height"], K, D)
    except ConfigError as exc:
        raise ConfigError(f"{where}: camera_matrix: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# hand-eye samples


def _vector(entry: Any, key: str, n: int, where: str) -> np.ndarray:
    v = entry.get(key) if isinstance(entry, dict) else None
    if not isinstance(v, list) or len(v) != n:
        raise ConfigError(f"{where}.{key}={v!r} must be a list of {n} numbers")
    for x in v:
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
            raise ConfigError(f"{where}.{key}={v!r} must be {n} finite numbers")
    return np.asarray(v, dtype=float)


def _expect_keys(entry: Any, keys: tuple[str, ...], where: str) -> None:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a mapping with keys {list(keys)}")
    extra = sorted((set(entry) - set(keys)), key=repr)  # keys of any YAML type
    if extra:
        raise ConfigError(f"{where}: unknown key(s) {extra}; expected {list(keys)}")


def _rigid(T: np.ndarray, where: str) -> np.ndarray:
    """``T`` [4, 4] if it is a finite rigid transform; a huge but finite rotation vector (an
    angle of 1e154 rad, found by fuzzing) gives a matrix that is neither."""
    if not is_rigid(T):
        raise ConfigError(f"{where} is not a rigid transform (a rotation angle too large?)")
    return T


def read_handeye_samples(path: str | Path) -> HandEyeSamples:
    """Read and validate a hand-eye samples YAML (schema in the module docstring).

    Errors are one-line ConfigErrors naming the file and the field, e.g.
    ``samples[4].T_base_tool.quat_xyzw``; fewer than ``MIN_POSES`` samples is an error.
    """
    path = Path(path)
    src = f"samples {str(path)!r}"
    data = _load_yaml(path, "samples file")
    _expect_keys(data, ("camera_info", "tool_frame", "samples"), src)
    cam = data.get("camera_info")
    if not isinstance(cam, str) or not cam:
        raise ConfigError(f"{src}: camera_info={cam!r} must name the camera_info YAML file")
    tool_frame = data.get("tool_frame", "tool0")
    if not isinstance(tool_frame, str) or not tool_frame:
        raise ConfigError(f"{src}: tool_frame={tool_frame!r} must be a non-empty string")
    entries = data.get("samples")
    if not isinstance(entries, list):
        raise ConfigError(f"{src}: samples must be a list of samples, got {entries!r:.40}")
    tools, boards = [], []
    for i, entry in enumerate(entries):
        where = f"{src}: samples[{i}]"
        _expect_keys(entry, ("T_base_tool", "T_cam_board"), where)
        for k in ("T_base_tool", "T_cam_board"):
            if k not in entry:
                raise ConfigError(f"{where}: missing {k}")
        tool = entry["T_base_tool"]
        _expect_keys(tool, ("xyz", "quat_xyzw"), f"{where}.T_base_tool")
        xyz = _vector(tool, "xyz", 3, f"{where}.T_base_tool")
        q = _vector(tool, "quat_xyzw", 4, f"{where}.T_base_tool")
        if abs(np.linalg.norm(q) - 1.0) > QUAT_NORM_TOL:
            raise ConfigError(
                f"{where}.T_base_tool.quat_xyzw={q.tolist()} has norm {np.linalg.norm(q):.4f};"
                " expected a unit quaternion (x, y, z, w)"
            )
        board = entry["T_cam_board"]
        _expect_keys(board, ("rvec", "tvec"), f"{where}.T_cam_board")
        rvec = _vector(board, "rvec", 3, f"{where}.T_cam_board")
        tvec = _vector(board, "tvec", 3, f"{where}.T_cam_board")
        if not tvec[2] > 0:
            raise ConfigError(
                f"{where}.T_cam_board.tvec={tvec.tolist()}: the board must be in front of the "
                "camera (z > 0)"
            )
        tools.append(_rigid(T_from_xyz_quat(xyz, q), f"{where}.T_base_tool"))
        boards.append(_rigid(T_from_rvec_tvec(rvec, tvec), f"{where}.T_cam_board"))
    n = len(tools)
    shape = (n, 4, 4)
    return HandEyeSamples(
        np.asarray(tools).reshape(shape),
        np.asarray(boards).reshape(shape),
        camera_info=cam,
        tool_frame=tool_frame,
        source=src,
    )


def write_handeye_samples(
    path: str | Path,
    T_base_tool: np.ndarray,
    T_cam_board: np.ndarray,
    camera_info: str,
    tool_frame: str = "tool0",
) -> Path:
    """Write samples ([N, 4, 4] each) in the format ``read_handeye_samples`` reads."""
    samples = []
    for Tt, Tb in zip(T_base_tool, T_cam_board, strict=True):
        xyz, q = xyz_quat_from_T(Tt)
        rvec, tvec = rvec_tvec_from_T(Tb)
        samples.append(
            {
                "T_base_tool": {"xyz": _floats(xyz), "quat_xyzw": _floats(q)},
                "T_cam_board": {"rvec": _floats(rvec), "tvec": _floats(tvec)},
            }
        )
    data = {"camera_info": camera_info, "tool_frame": tool_frame, "samples": samples}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_flow_lists(data))
    return path


# ---------------------------------------------------------------------------------------------
# hand-eye result


def handeye_result_dict(result: HandEyeResult, tool_frame: str = "tool0") -> dict:
    """The result file's content (schema in the module docstring) for the best method."""
    best = result.best
    X = np.asarray(best.X, dtype=float).copy()
    X[3] = [0.0, 0.0, 0.0, 1.0]
    xyz, q = xyz_quat_from_T(X)
    eye_to_hand = result.mode == "eye-to-hand"
    return {
        "camera": {("T_world_cam" if eye_to_hand else "T_tool_cam"): _floats(X)},
        "static_transform": {
            "parent_frame": WORLD_FRAME if eye_to_hand else tool_frame,
            "child_frame": CAMERA_CHILD_FRAME,
            "xyz": _floats(xyz),
            "quat_xyzw": _floats(q),
        },
        "handeye": {
            "mode": result.mode,
            "method": best.method,
            "samples": result.samples,
            "residual_translation_mm": float(best.residual_translation_mm),
            "residual_rotation_deg": float(best.residual_rotation_deg),
        },
    }


def write_handeye_result(
    path: str | Path, result: HandEyeResult, tool_frame: str = "tool0"
) -> Path:
    """Write the hand-eye result YAML; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_flow_lists(handeye_result_dict(result, tool_frame)))
    return path
