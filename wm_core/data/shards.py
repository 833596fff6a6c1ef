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
| ``action`` | float32 | [T, 4] | the action taken, ``[dx, dy, dz, suction]`` in [-1, 1] |
| ``label/tool_pos`` | float32 | [T+1, 3] | privileged: tool tip position (m) |
| ``label/object_pos`` | float32 | [T+1, K, 3] | privileged: object positions (m) |

``obs/*`` and ``action`` are model inputs. ``label/*`` is simulator ground truth, kept apart
for evaluation and probes only: loaders hand it out only when asked for explicitly.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SHARD_VERSION = 1
OBS_KEYS = ("image", "joint_pos", "joint_vel", "suction")
LABEL_KEYS = ("tool_pos", "object_pos")


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


def load_shard(path: Path, with_labels: bool = False) -> Episode:
    """Read and validate one shard; any problem raises :class:`ShardError` naming the file."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    # A damaged file can fail inside zipfile/zlib/numpy in many ways (BadZipFile, zlib.error,
    # EOFError, ValueError, even NotImplementedError for a garbled zip version field): this is
    # the boundary for untrusted bytes, so every failure becomes a ShardError naming the file.
    except Exception as exc:
        raise ShardError(
            f"{path}: corrupt or truncated shard ({type(exc).__name__}: {exc})"
        ) from exc
    version = int(arrays.get("format_version", np.array(-1)))
    if version != SHARD_VERSION:
        raise ShardError(f"{path}: shard format version {version}, expected {SHARD_VERSION}")
    _check(path, arrays)
    try:
        meta = json.loads(str(arrays["meta"]))
    except json.JSONDecodeError as exc:
        raise ShardError(f"{path}: meta is not valid JSON") from exc
    obs = {k: arrays[f"obs/{k}"] for k in OBS_KEYS if f"obs/{k}" in arrays}
    labels = None
    if with_labels:
        labels = {k: arrays[f"label/{k}"] for k in LABEL_KEYS if f"label/{k}" in arrays}
    return Episode(obs, arrays["action"], meta, labels)


def _check(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Shapes and dtypes consistent with the documented layout."""
    for k in ("obs/joint_pos", "obs/joint_vel", "obs/suction", "action"):
        if k not in arrays:
            raise ShardError(f"{path}: missing array {k!r}")
    n = arrays["obs/joint_pos"].shape[0]
    expect = {
        "obs/joint_pos": (n, 6),
        "obs/joint_vel": (n, 6),
        "obs/suction": (n, 1),
        "action": (n - 1, 4),
        "label/tool_pos": (n, 3),
    }
    for k, shape in expect.items():
        if k in arrays and arrays[k].shape != shape:
            raise ShardError(f"{path}: {k} has shape {arrays[k].shape}, expected {shape}")
    if "obs/image" in arrays:
        im = arrays["obs/image"]
        if im.dtype != np.uint8 or im.ndim != 4 or im.shape[0] != n or im.shape[3] != 3:
            raise ShardError(
                f"{path}: obs/image has {im.dtype} {im.shape}, expected uint8 [{n}, H, W, 3]"
            )
    for k in ("obs/joint_pos", "obs/joint_vel", "action"):
        if not np.all(np.isfinite(arrays[k])):
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
