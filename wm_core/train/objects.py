"""``wm train objects``: the compact object-level world model the planner predicts objects with.

Training data: recorded episodes with object positions (``label/object_pos``: the simulator's,
or a robot's own from its grips; the same labels ``wm train readout`` fits) and the arm's own
joints and suction. The model is rolled out over windows of ``horizon`` steps along the
*recorded* proprioception and trained on the squared position error (cm^2) at every step, so
it learns multi-step prediction. Half of each batch is drawn from windows in which an object
moves by more than 1 cm (a table is mostly still; without this the model would learn "nothing
moves" and little else).

The last tenth of the episodes is held out: the summary gives the error after ``horizon``
steps of the objects that moved (and of all objects), beside copy-last (nothing moves).

Writes ``OUT/objects.pt`` (read by the planner from the model directory) and
``OUT/objects.json``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from wm_core.cell import Workcell, sim_cell
from wm_core.config import check_fields, check_range
from wm_core.data.shards import scan_shards
from wm_core.models.checkpoint import CheckpointError, load_untrusted
from wm_core.models.objects import ObjectDynamics, ObjectDynamicsConfig
from wm_core.robot import ArmKinematics
from wm_core.train.data import proprio_from_obs
from wm_core.train.readout import episode_cell

log = logging.getLogger(__name__)

MOVED_M = 0.01  # an object "moved" in a window if it ends > 1 cm from where it started


@dataclass(frozen=True)
class ObjectTrainConfig:
    steps: int = 3000
    """Optimiser steps."""
    batch_size: int = 256
    """Windows per step."""
    horizon: int = 5
    """Steps each training window is rolled out (the planner's horizon)."""
    lr: float = 2e-3
    """AdamW learning rate."""
    hidden: int = 64
    layers: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self)
        check_range("steps", self.steps, 1, 1_000_000, integer=True)
        check_range("batch_size", self.batch_size, 1, 65536, integer=True)
        check_range("horizon", self.horizon, 1, 64, integer=True)
        check_range("lr", self.lr, 1e-7, 1.0)
        ObjectDynamicsConfig(self.hidden, self.layers)  # validates both


@dataclass
class _Episode:
    obj: torch.Tensor  # [T+1, K, 3]
    p: torch.Tensor  # [T+1, 10]
    table_z: float


def load_object_episodes(data: Path, cell: Workcell | None = None) -> tuple[list[_Episode], int]:
    """The labelled episodes under ``data`` (object positions and proprioception) and the
    number of bad shards skipped."""
    episodes, errors = scan_shards(data, with_labels=True)
    base = cell or sim_cell()
    kin = ArmKinematics(base_pose=base.arm.T_world_base)
    out = []
    for e in episodes:
        obj = (e.labels or {}).get("object_pos")
        if obj is None or obj.shape[1] == 0 or not np.isfinite(obj).all():
            continue
        p = proprio_from_obs(kin, e.obs["joint_pos"], e.obs["suction"])  # [T+1, 10]
        out.append(
            _Episode(
                torch.from_numpy(obj.astype(np.float32)),
                torch.from_numpy(p),
                float(episode_cell(e, base).table.top_z),
            )
        )
    return out, len(errors)


def _windows(eps: list[_Episode], h: int) -> dict[int, list[tuple[int, int, bool]]]:
    """{K: [(episode, start, moved)]}: every window of h+1 frames, grouped by object count
    (a batch has one K, so no padding)."""
    out: dict[int, list[tuple[int, int, bool]]] = defaultdict(list)
    for i, e in enumerate(eps):
        n = e.obj.shape[0] - h
        if n <= 0:
            continue
        moved = (e.obj[h:] - e.obj[:n]).norm(dim=-1).amax(-1) > MOVED_M  # [n]
        out[e.obj.shape[1]] += [(i, t, bool(m)) for t, m in enumerate(moved)]
    return out


def _batch(eps, wins, h):
    """-> obj [B, H+1, K, 3], p [B, H+1, 10], table_z [B]."""
    obj = torch.stack([eps[i].obj[t : t + h + 1] for i, t, _ in wins])
    p = torch.stack([eps[i].p[t : t + h + 1] for i, t, _ in wins])
    tz = torch.tensor([eps[i].table_z for i, _, _ in wins])
    return obj, p, tz


def _rollout(model: ObjectDynamics, obj, p, tz) -> torch.Tensor:
    """Along the recorded proprioception: obj [B, H+1, K, 3], p [B, H+1, 10] -> [B, H, K, 3].
    Windows of one batch may come from cells with different table heights: grouped by it."""
    out = torch.empty_like(obj[:, 1:])
    for z in tz.unique():
        m = tz == z
        out[m] = model.rollout(obj[m, 0], p[m, 0], p[m, 1:], float(z))
    return out


@torch.no_grad()
def held_out_errors(model: ObjectDynamics, eps: list[_Episode], h: int) -> dict:
    """Error (cm) after h steps, of the objects that moved > 1 cm and of all objects, for the
    model and for copy-last, over every window of the episodes."""
    moved_e, moved_b, all_e, all_b = [], [], [], []
    for wins in _windows(eps, h).values():
        for s in range(0, len(wins), 2048):
            obj, p, tz = _batch(eps, wins[s : s + 2048], h)
            pred = _rollout(model, obj, p, tz)[:, -1]  # [B, K, 3]
            truth, last = obj[:, -1], obj[:, 0]
            e, b = (pred - truth).norm(dim=-1), (last - truth).norm(dim=-1)  # [B, K]
            moved = b > MOVED_M
            moved_e.append(e[moved])
            moved_b.append(b[moved])
            all_e.append(e.flatten())
            all_b.append(b.flatten())
    if not all_e:
        return {}

    def cm(x):
        x = torch.cat(x)
        return round(float(x.mean()) * 100, 3) if len(x) else None

    return {
        f"moved_objects_h{h}": int(sum(len(x) for x in moved_e)),
        f"moved_obj_err_cm_h{h}": cm(moved_e),
        f"copy_last_moved_obj_err_cm_h{h}": cm(moved_b),
        f"all_obj_err_cm_h{h}": cm(all_e),
        f"copy_last_all_obj_err_cm_h{h}": cm(all_b),
    }


def train_objects(
    data: Path, out: Path, cfg: ObjectTrainConfig, cell: Workcell | None = None
) -> dict:
    eps, bad = load_object_episodes(data, cell)
    if len(eps) < 2:
        raise ValueError(f"{data}: need >= 2 episodes with object positions, found {len(eps)}")
    n_test = max(1, len(eps) // 10)
    train, test = eps[:-n_test], eps[-n_test:]
    h = cfg.horizon
    groups = _windows(train, h)
    if not groups:
        raise ValueError(f"{data}: no episode is longer than the horizon ({h} steps)")
    keys = sorted(groups)
    weights = np.array([len(groups[k]) for k in keys], float)
    moved_idx = {k: [w for w in groups[k] if w[2]] for k in keys}
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = ObjectDynamics(ObjectDynamicsConfig(cfg.hidden, cfg.layers))
    before = held_out_errors(model.eval(), test, h)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    model.train()
    t0, losses = time.perf_counter(), []
    for step in range(cfg.steps):
        k = keys[rng.choice(len(keys), p=weights / weights.sum())]
        pool, moving = groups[k], moved_idx[k]
        n_moved = cfg.batch_size // 2 if moving else 0
        pick = [pool[i] for i in rng.integers(0, len(pool), cfg.batch_size - n_moved)]
        pick += [moving[i] for i in rng.integers(0, len(moving), n_moved)] if moving else []
        obj, p, tz = _batch(train, pick, h)
        pred = _rollout(model, obj, p, tz)  # [B, H, K, 3]
        loss = (((pred - obj[:, 1:]) * 100) ** 2).sum(-1).mean()  # cm^2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if step % 500 == 0:
            log.info("objects step %d/%d loss %.3f cm^2", step, cfg.steps, losses[-1])
    seconds = time.perf_counter() - t0
    model.eval()
    summary = {
        "config": asdict(cfg),
        "episodes_train": len(train),
        "episodes_test": len(test),
        "windows_train": int(weights.sum()),
        "bad_shards": bad,
        "seconds": round(seconds, 1),
        "final_loss_cm2": float(np.mean(losses[-50:])),
        "test_untrained": before,
        "test": held_out_errors(model, test, h),
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "objects.pt.tmp"
    torch.save(model.to_state(summary), tmp)
    os.replace(tmp, out / "objects.pt")
    (out / "objects.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def load_objects(path: Path) -> ObjectDynamics:
    """The object model at ``path`` (``weights_only=True``; a bad file is one
    :class:`CheckpointError` line)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"object model {path} does not exist (make it: wm train objects)")
    try:
        return ObjectDynamics.from_state(load_untrusted(path, "object model"), str(path))
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
