"""On-disk trajectory shards: one episode per ``.npz`` file, format version 1.

Why ``.npz``: it is numpy-native (no extra dependency), it holds named arrays of mixed dtypes
in one file, and it is a zip archive whose per-member CRC-32 makes a corrupt or truncated file
fail loudly on read instead of yielding garbage. Shards are written to a temporary name and
renamed into place, so a crash never leaves a half-written shard under a final name, and
collection can resume by skipping the shards that exist.

Layout of a shard with ``T`` actions (``T + 1`` observations):

| key | dtype | shape | meaning |
|---|---|---|---|
| ``format_version`` | int64 | [] | ``SHARD_VERSION`` |
| ``meta`` | str (JSON) | [] | seed, exploration mode, scene config, source |
| ``obs/image`` | uint8 | [T+1, H, W, 3] | scene camera RGB |
| ``obs/joint_pos`` | float32 | [T+1, 6] | joint positions (rad) |
| ``obs/joint_vel`` | float32 | [T+1, 6] | joint velocities (rad/s) |
| ``obs/suction`` | float32 | [T+1, 1] | suction on (1) or off (0) |
| ``obs/suction_held`` | float32 | [T+1, 1] | optional: the cup's vacuum switch, holding (1) |
| ``action`` | float32 | [T, 4] | the action taken, ``[dx, dy, dz, suction]`` in [-1, 1] |
| ``label/tool_pos`` | float32 | [T+1, 3] | privileged: tool tip position (m) |
| ``label/object_pos`` | float32 | [T+1, K, 3] | privileged: object positions (m) |
| ``label/camera_pose`` | float32 | [4, 4] | privileged: the scene camera's true ``T_world_cam`` |
| ``label/image_nominal`` | uint8 | [T+1, H, W, 3] | optional: each frame with the nominal look |

``label/camera_pose`` (optional; shards from before it lack it) is the episode's true, possibly
jittered, camera pose (OpenCV optical frame): the object readout's targets are assigned to the
patches an object really projects into. ``label/image_nominal`` (``wm collect --paired``) is
each frame of a domain-randomised episode rendered again without the appearance and light
randomisation: the same state, camera and table, for ``wm train invariance``.

``obs/*`` and ``action`` are model inputs. ``label/*`` is simulator ground truth, kept apart
for evaluation and probes only: loaders hand it out only when asked for explicitly. In a shard
imported from a robot's recording (``meta['source'] == 'rosbag2'``), ``label/object_pos`` is
no ground truth: it is the robot's own labels from where its suction cup gripped
(``meta['object_pos_source']``, :mod:`wm_core.data.grip_labels`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SHARD_VERSION = 1
OBS_KEYS = ("image", "joint_pos", "joint_vel", "suction", "suction_held")
LABEL_KEYS = ("tool_pos", "object_pos", "camera_pose", "image_nominal")
FLOAT_KEYS = (
    "obs/joint_pos",
    "obs/joint_vel",
    "obs/suction",
    "obs/suction_held",
    "action",
    "label/tool_pos",
    "label/object_pos",
    "label/camera_pose",
)
MAX_SHARD_BYTES = 1 << 30
"""Uncompressed size limit of one shard (1 GiB; 500 steps of 128 px images are 25 MB)."""
MAX_MEMBERS = 64


class ShardError(ValueError):
    """A shard is corrupt, truncated, of another version, or inconsistent. Names the file."""


@dataclass(frozen=True)
class Episode:
    obs: dict[str, np.ndarray]  # each [T+1, ...]
    action: np.ndarray  # [T, 4]
    meta: dict
    labels: dict[str, np.ndarray] | None = None  # privileged; only when requested

    @property
    def n_steps(self) -> int:
        return int(self.action.shape[0])


def save_shard(path: Path, episode: Episode) -> None:
    """Write atomically (temporary file, then rename)."""
    path = Path(path)
    arrays = {f"obs/{k}": v for k, v in episode.obs.items()}
    arrays["action"] = episode.action
    for k, v in (episode.labels or {}).items():
        arrays[f"label/{k}"] = v
    arrays["format_version"] = np.array(SHARD_VERSION)
    arrays["meta"] = np.array(json.dumps(episode.meta))
    _check(path, arrays)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_shard(path: Path, with_labels: bool = False, max_bytes: int | None = None) -> Episode:
    """Read and validate one shard; any problem raises :class:`ShardError` naming the file.

    A shard is untrusted input: members whose declared sizes add up to more than ``max_bytes``
    (default :data:`MAX_SHARD_BYTES`), or whose array header claims more data than the member
    holds, are refused before anything is decompressed or allocated (zip bombs)."""
    path = Path(path)
    arrays = _read_arrays(path, MAX_SHARD_BYTES if max_bytes is None else max_bytes)
    version = arrays.get("format_version")
    if version is None or version.shape != () or version.dtype.kind not in "iu":
        got = "missing" if version is None else f"{version.dtype} {list(version.shape)}"
        raise ShardError(f"{path}: format_version is {got}, expected an integer {SHARD_VERSION}")
    if int(version) != SHARD_VERSION:
        raise ShardError(f"{path}: shard format version {int(version)}, expected {SHARD_VERSION}")
    _check(path, arrays)
    meta = arrays.get("meta")
    if meta is None or meta.shape != () or meta.dtype.kind != "U":
        raise ShardError(f"{path}: meta is missing or not a JSON string")
    try:
        meta = json.loads(str(meta))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise ShardError(f"{path}: meta is not valid JSON") from exc
    if not isinstance(meta, dict):
        raise ShardError(f"{path}: meta is {type(meta).__name__}, expected a JSON object")
    obs = {k: arrays[f"obs/{k}"] for k in OBS_KEYS if f"obs/{k}" in arrays}
    labels = None
    if with_labels:
        labels = {k: arrays[f"label/{k}"] for k in LABEL_KEYS if f"label/{k}" in arrays}
    return Episode(obs, arrays["action"], meta, labels)


def _read_arrays(path: Path, max_bytes: int) -> dict[str, np.ndarray]:
    """The shard's arrays by name, each member's size checked before it is read."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_MEMBERS:
                raise ShardError(f"{path}: {len(infos)} members; a shard has at most {MAX_MEMBERS}")
            declared = sum(i.file_size for i in infos)
            if declared > max_bytes:
                raise ShardError(
                    f"{path}: members declare {declared} bytes uncompressed, over the "
                    f"{max_bytes}-byte limit of a shard (zip bomb?)"
                )
            arrays = {}
            for info in infos:
                name = info.filename.removesuffix(".npy")
                if not info.filename.endswith(".npy") or name in arrays:
                    raise ShardError(f"{path}: unexpected member {info.filename!r}")
                _check_member_header(path, zf, info)
                with zf.open(info) as f:
                    arrays[name] = np.lib.format.read_array(f, allow_pickle=False)
            return arrays
    except ShardError:
        raise
    # A damaged file can fail inside zipfile/zlib/numpy in many ways (BadZipFile, zlib.error,
    # EOFError, ValueError, even NotImplementedError for a garbled zip version field): this is
    # the boundary for untrusted bytes, so every failure becomes a ShardError naming the file.
    except Exception as exc:
        raise ShardError(
            f"{path}: corrupt or truncated shard ({type(exc).__name__}: {exc})".splitlines()[0]
        ) from exc


def _check_member_header(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """The .npy header of ``info`` must describe exactly the data the member holds (so numpy
    never allocates more than the member's declared, limit-checked size), and no objects."""
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ShardError(f"{path}: {info.filename}: .npy format {version} not supported")
        header_len = f.tell()
    if dtype.hasobject:
        raise ShardError(f"{path}: {info.filename} holds Python objects; refused")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes != info.file_size - header_len:
        raise ShardError(
            f"{path}: {info.filename} claims {dtype} {list(shape)} ({nbytes} bytes) but holds "
            f"{info.file_size - header_len} bytes"
        )


def _check(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Shapes and dtypes consistent with the documented layout."""
    for k in ("obs/joint_pos", "obs/joint_vel", "obs/suction", "action"):
        if k not in arrays:
            raise ShardError(f"{path}: missing array {k!r}")
    for k in FLOAT_KEYS:
        if k in arrays and (not isinstance(arrays[k], np.ndarray) or arrays[k].dtype.kind != "f"):
            got = getattr(arrays[k], "dtype", type(arrays[k]).__name__)
            raise ShardError(f"{path}: {k} is {got}, expected floating point")
    if arrays["obs/joint_pos"].ndim != 2:
        got = arrays["obs/joint_pos"].shape
        raise ShardError(f"{path}: obs/joint_pos has shape {got}, expected (T+1, 6)")
    n = arrays["obs/joint_pos"].shape[0]
    expect = {
        "obs/joint_pos": (n, 6),
        "obs/joint_vel": (n, 6),
        "obs/suction": (n, 1),
        "obs/suction_held": (n, 1),
        "action": (n - 1, 4),
        "label/tool_pos": (n, 3),
        "label/camera_pose": (4, 4),
    }
    for k, shape in expect.items():
        if k in arrays and arrays[k].shape != shape:
            raise ShardError(f"{path}: {k} has shape {arrays[k].shape}, expected {shape}")
    for key in ("obs/image", "label/image_nominal"):
        if key not in arrays:
            continue
        im = arrays[key]
        if (
            not isinstance(im, np.ndarray)
            or im.dtype != np.uint8
            or im.ndim != 4
            or im.shape[0] != n
            or im.shape[3] != 3
            or min(im.shape[1:3]) < 1
        ):
            got = f"{getattr(im, 'dtype', type(im).__name__)} {getattr(im, 'shape', '')}"
            raise ShardError(f"{path}: {key} has {got}, expected uint8 [{n}, H, W, 3]")
    pair = arrays.get("obs/image"), arrays.get("label/image_nominal")
    if pair[1] is not None and (pair[0] is None or pair[0].shape != pair[1].shape):
        got = None if pair[0] is None else pair[0].shape
        raise ShardError(f"{path}: label/image_nominal has shape {pair[1].shape}, obs/image {got}")
    if "label/object_pos" in arrays:
        obj = arrays["label/object_pos"]
        if obj.ndim != 3 or obj.shape[0] != n or obj.shape[2] != 3:
            raise ShardError(
                f"{path}: label/object_pos has shape {obj.shape}, expected ({n}, K, 3)"
            )
    for k in FLOAT_KEYS:
        if k in arrays and not np.all(np.isfinite(arrays[k])):
            raise ShardError(f"{path}: {k} contains NaN or inf")


def scan_shards(root: Path, with_labels: bool = False) -> tuple[list[Episode], list[str]]:
    """Load every shard under ``root``. Bad shards are skipped *and reported*: the second
    return value lists one error line per bad file, and each is logged as a warning."""
    episodes, errors = [], []
    for p in sorted(Path(root).rglob("*.npz")):
        try:
            episodes.append(load_shard(p, with_labels=with_labels))
        except ShardError as exc:
            log.warning("skipping bad shard: %s", exc)
            errors.append(str(exc))
    return episodes, errors
