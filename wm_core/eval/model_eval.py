"""``wm evaluate-model``: collapse metrics, linear probes and open-loop rollout error.

Held-out episodes are collected fresh from seeds ``seed .. seed+episodes-1`` (noisy oracle and
mixed exploration, so objects move). Probes are fitted on the first half of the episodes and
scored on the second half: different seeds, different scenes. With ``data`` the episodes are
recorded shards instead (for example a robot's own, imported with ``wm import-bag --objects N``,
labelled from its grips), taken in path order, with the work ``cell`` whose camera took them.

- Collapse: ``min_dim_std``, ``effective_rank`` (RankMe), ``embedding_dim`` of patch latents.
- ``probe_r2_tool``: model state (mean patch latent + proprioception) -> tool position, ridge
  with lambda chosen by leave-one-episode-out CV on the training half.
- ``probe_r2_objects``: image latent alone -> object positions, with the linear object readout
  (``wm_core.models.readout``: a linear map of each patch's 3x3 neighbourhood, scored at the
  patches that hold an object; objects have no fixed order, so one flat regression onto
  "object 0, object 1, ..." would be ill-posed). Variance-weighted R^2 plus the error in cm.
- ``rollout_error_h{1,5,10}``: predicted state against the encoder of the true future frame and
  the true proprioception, normalised per dimension (latent: per channel, over all patches;
  proprioception: per entry, floored at its typical one-step change), mean squared; also split
  into ``rollout_latent_error_h*`` and ``rollout_proprio_error_h*``. Copy-last gets the same
  treatment, and ``rollout_error_ratio_h5`` = ours / copy-last.
- ``rollout_obj_err_cm_h5``: the object readout on the 5-step predicted latent, for objects that
  moved > 1 cm in those 5 steps, against their true positions; beside copy-last (the readout
  on the current latent) and, with ``baseline``, the generative model (its own readout).
- With ``objects`` (the planner's compact object model, ``wm train objects``), the same
  objects after 5 steps predicted by it along the model's predicted proprioception:
  ``object_model_obj_err_cm_h5`` from the readout's estimate of where each object is now (what
  the planner has; the true position for an object outside the image then),
  ``object_model_from_truth_obj_err_cm_h5`` from the true positions.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import torch

from wm_core.cell import Workcell, sim_cell
from wm_core.data.collect import CollectConfig, collect_episode
from wm_core.data.shards import scan_shards
from wm_core.models.checkpoint import CheckpointError, load_checkpoint
from wm_core.models.config import PROPRIO_SCALE
from wm_core.models.losses import effective_rank
from wm_core.models.readout import fit_readout, position_r2
from wm_core.robot import ArmKinematics
from wm_core.sim import SceneConfig
from wm_core.train.data import proprio_from_obs
from wm_core.train.objects import load_objects
from wm_core.train.readout import new_readout, targets_for

log = logging.getLogger(__name__)

HORIZONS = (1, 5, 10)


RIDGE_LAMBDAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def _ridge_fit(x: np.ndarray, y: np.ndarray, lam: float):
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xs1 = np.concatenate([(x - mu) / sd, np.ones((len(x), 1))], 1)
    w = np.linalg.solve(xs1.T @ xs1 + lam * len(x) * np.eye(xs1.shape[1]), xs1.T @ y)
    return lambda q: np.concatenate([(q - mu) / sd, np.ones((len(q), 1))], 1) @ w


def _ridge_cv(x: np.ndarray, y: np.ndarray, groups: np.ndarray):
    """Ridge with lambda chosen by leave-one-episode-group-out CV on the training set."""
    folds = np.unique(groups)
    if len(folds) < 2:
        return _ridge_fit(x, y, 1e-2), 1e-2
    scores = {}
    for lam in RIDGE_LAMBDAS:
        err = 0.0
        for f in folds:
            tr, va = groups != f, groups == f
            err += float(((_ridge_fit(x[tr], y[tr], lam)(x[va]) - y[va]) ** 2).sum())
        scores[lam] = err
    lam = min(scores, key=scores.get)
    return _ridge_fit(x, y, lam), lam


def _r2(pred: np.ndarray, y: np.ndarray) -> float:
    """Variance-weighted R^2 over the output dimensions."""
    ss_res = ((pred - y) ** 2).sum()
    ss_tot = ((y - y.mean(0)) ** 2).sum() + 1e-12
    return float(1 - ss_res / ss_tot)


def collect_eval_episodes(
    episodes: int, seed: int, steps: int, image_size: int, n_objects: int
) -> list:
    """Fresh held-out episodes (noisy-oracle and mixed exploration, so objects move)."""
    ccfg = CollectConfig(
        steps_per_episode=steps, image_size=image_size, mode_weights=(0.0, 0.6, 0.4)
    )
    return [
        collect_episode(s, SceneConfig(n_objects=n_objects), ccfg)
        for s in range(seed, seed + episodes)
    ]


def shard_eval_episodes(data: Path) -> list:
    """Recorded held-out episodes: every shard under ``data`` with images and object labels,
    in path order. They must all hold the same number of objects (the labels are stacked)."""
    episodes, errors = scan_shards(Path(data), with_labels=True)
    usable = [e for e in episodes if "image" in e.obs and "object_pos" in (e.labels or {})]
    counts = {e.labels["object_pos"].shape[1] for e in usable}
    if len(usable) < 2:
        raise ValueError(
            f"{data}: need >= 2 shards with images and object labels, found {len(usable)} "
            f"({len(errors)} bad)"
        )
    if len(counts) > 1:
        raise ValueError(f"{data}: shards label different object counts {sorted(counts)}")
    return usable


def _episode_name(ep, i: int) -> str:
    """A shard episode's seed, or its bag and scene (an imported recording's)."""
    if "seed" in ep.meta:
        return f"seed {ep.meta['seed']}"
    scene = (ep.meta.get("annotations") or {}).get("scene", i)
    return f"{ep.meta.get('bag', 'shard')} scene {scene}"


def _encode(model, raw: list, kin: ArmKinematics) -> list[dict]:
    eps = []
    for ep in raw:
        img = torch.from_numpy(ep.obs["image"]).permute(0, 3, 1, 2).float() / 255.0
        eps.append(
            {
                "z": model.encode(img),  # [T+1, N, D]
                "p": torch.from_numpy(
                    proprio_from_obs(kin, ep.obs["joint_pos"], ep.obs["suction"])
                ),  # [T+1, 10]
                "a": torch.from_numpy(ep.action),  # [T, 4]
                "tool": ep.labels["tool_pos"],  # [T+1, 3]
                "obj": ep.labels["object_pos"],  # [T+1, K, 3]
            }
        )
    return eps


@torch.no_grad()
def model_metrics(model, raw: list, half: int, cell: Workcell | None = None, objects=None) -> dict:
    """Every metric for one model on the same held-out episodes (probes: train on the first
    ``half`` episodes, test on the rest); ``cell``: whose camera took them (default: sim);
    ``objects``: the compact object model, scored beside the latent rollout."""
    kin = ArmKinematics()
    cfg = model.cfg
    eps = _encode(model, raw, kin)
    train_eps, test_eps = eps[:half], eps[half:]
    emb = torch.cat([e["z"].flatten(0, 1) for e in eps])  # [M, D]
    rep: dict = {
        "embedding_dim": cfg.latent_dim,
        "min_dim_std": float(emb.std(0).min()),
        "effective_rank": effective_rank(emb),
    }

    # tool probe: model state (mean patch latent + proprioception) -> tool position
    def state(e) -> np.ndarray:
        return np.concatenate([e["z"].mean(1).numpy(), e["p"].numpy()], 1)

    groups = np.concatenate([np.full(len(e["p"]), i) for i, e in enumerate(train_eps)])
    tool_probe, lam = _ridge_cv(
        np.concatenate([state(e) for e in train_eps]),
        np.concatenate([e["tool"] for e in train_eps]),
        groups,
    )
    rep["probe_r2_tool"] = _r2(
        tool_probe(np.concatenate([state(e) for e in test_eps])),
        np.concatenate([e["tool"] for e in test_eps]),
    )
    rep["probe_tool_ridge_lambda"] = lam
    # object probe: the linear readout on the image latent alone
    readout = new_readout(model, cell=cell)

    def targets(es):
        occ, pos = targets_for(model, np.concatenate([e["obj"] for e in es]), cell)
        return torch.cat([e["z"] for e in es]), occ, pos

    with torch.enable_grad():
        fit_readout(readout, *targets(train_eps))
    r2, err = position_r2(readout, *targets(test_eps))
    rep["probe_r2_objects"] = r2
    rep["probe_objects_err_cm"] = err * 100
    # open-loop rollouts on the test episodes. Normalisation: each latent channel by its std
    # over all patches and frames of the test set (a per-patch std is ~0 on the static
    # background and would blow any error up); each proprioception entry by its std, floored
    # at its typical one-step change (PROPRIO_SCALE).
    z_std = torch.cat([e["z"].flatten(0, 1) for e in test_eps]).std(0)  # [D]
    p_std = torch.cat([e["p"] for e in test_eps]).std(0).clamp(min=torch.tensor(PROPRIO_SCALE))
    std = torch.cat([z_std.repeat(cfg.grid * cfg.grid), p_std])  # [N*D + 10]
    n_lat = cfg.grid * cfg.grid * cfg.latent_dim
    errs = {h: [] for h in HORIZONS}
    base = {h: [] for h in HORIZONS}
    obj_err, obj_base, om_err, om_truth_err = [], [], [], []
    table_z = (cell or sim_cell()).table.top_z
    hmax = max(HORIZONS)
    for e in test_eps:
        t_max = e["a"].shape[0] - hmax
        if t_max <= 0:
            continue
        starts = torch.arange(0, t_max, 2)
        acts = torch.stack([e["a"][t : t + hmax] for t in starts])  # [S, H, 4]
        zr, pr = model.rollout(e["z"][starts], e["p"][starts], acts)  # [S, H, N, D], [S, H, 10]
        last = torch.cat([e["z"][starts].flatten(1), e["p"][starts]], 1)
        for h in HORIZONS:
            pred = torch.cat([zr[:, h - 1].flatten(1), pr[:, h - 1]], 1)
            true = torch.cat([e["z"][starts + h].flatten(1), e["p"][starts + h]], 1)
            errs[h].append(((pred - true) / std) ** 2)  # [S, N*D + 10]
            base[h].append(((last - true) / std) ** 2)
        s = starts.numpy()
        obj_t, obj_h5 = e["obj"][s], e["obj"][s + 5]  # [S, K, 3]
        moved = np.linalg.norm(obj_h5 - obj_t, axis=-1) > 0.01  # [S, K]
        if moved.any():
            _, xyz_pred = readout(zr[:, 4])  # [S, G, G, 3]
            _, xyz_last = readout(e["z"][starts])
            cells = _cells(model, obj_h5, cell)  # [S, K, 2]
            if objects is not None:
                now = _cells(model, obj_t, cell)  # [S, K, 2]
                s_i = np.arange(len(s))[:, None]
                rows, cols = torch.as_tensor(now[..., 0]), torch.as_tensor(now[..., 1])
                seen = xyz_last[torch.as_tensor(s_i), rows, cols]  # [S, K, 3] the readout's
                seen = torch.where(torch.as_tensor(now[..., :1] >= 0), seen, torch.tensor(obj_t))
                om = objects.rollout(seen, e["p"][starts], pr[:, :5], table_z)[:, 4]
                om_t = objects.rollout(torch.tensor(obj_t), e["p"][starts], pr[:, :5], table_z)
            for si, ki in zip(*np.nonzero(moved), strict=True):
                r_, c_ = cells[si, ki]
                if r_ < 0:
                    continue
                truth = obj_h5[si, ki]
                obj_err.append(np.linalg.norm(xyz_pred[si, r_, c_].numpy() - truth))
                obj_base.append(np.linalg.norm(xyz_last[si, r_, c_].numpy() - truth))
                if objects is not None:
                    om_err.append(np.linalg.norm(om[si, ki].numpy() - truth))
                    om_truth_err.append(np.linalg.norm(om_t[si, 4, ki].numpy() - truth))
    for h in HORIZONS:
        if not errs[h]:
            rep[f"rollout_error_h{h}"] = rep[f"copy_last_error_h{h}"] = None
            continue
        e_h, b_h = torch.cat(errs[h]), torch.cat(base[h])  # [S_all, N*D + 10]
        rep[f"rollout_error_h{h}"] = float(e_h.mean())
        rep[f"copy_last_error_h{h}"] = float(b_h.mean())
        rep[f"rollout_latent_error_h{h}"] = float(e_h[:, :n_lat].mean())
        rep[f"copy_last_latent_error_h{h}"] = float(b_h[:, :n_lat].mean())
        rep[f"rollout_proprio_error_h{h}"] = float(e_h[:, n_lat:].mean())
        rep[f"copy_last_proprio_error_h{h}"] = float(b_h[:, n_lat:].mean())
    if rep["rollout_error_h5"] is not None:
        rep["rollout_error_ratio_h5"] = rep["rollout_error_h5"] / max(
            rep["copy_last_error_h5"], 1e-12
        )
    rep["rollout_obj_err_cm_h5"] = float(np.mean(obj_err) * 100) if obj_err else None
    rep["copy_last_obj_err_cm_h5"] = float(np.mean(obj_base) * 100) if obj_base else None
    rep["moved_objects_h5"] = len(obj_err)
    if objects is not None:
        rep["object_model_obj_err_cm_h5"] = float(np.mean(om_err) * 100) if om_err else None
        rep["object_model_from_truth_obj_err_cm_h5"] = (
            float(np.mean(om_truth_err) * 100) if om_truth_err else None
        )
    return rep


def _cells(model, obj: np.ndarray, cell: Workcell | None = None) -> np.ndarray:
    """Object centres [S, K, 3] -> their (row, col) latent cells [S, K, 2]; -1 if off-image."""
    from wm_core.models.readout import project

    cfg, cam = model.cfg, (cell or sim_cell()).camera
    uvd = project(obj, cam.k_for(cfg.image_size), cam.pose)
    px = cfg.image_size / cfg.grid  # a latent cell's side in pixels
    rc = np.stack([np.floor(uvd[..., 1] / px), np.floor(uvd[..., 0] / px)], -1).astype(int)
    bad = (rc < 0).any(-1) | (rc >= cfg.grid).any(-1) | (uvd[..., 2] <= 0)
    rc[bad] = -1
    return rc


def evaluate_model(
    checkpoint: Path,
    episodes: int,
    seed: int,
    out: Path,
    steps: int = 120,
    n_objects: int = 3,
    baseline: Path | None = None,
    data: Path | None = None,
    cell: Workcell | None = None,
    objects: Path | None = None,
) -> dict:
    """``model_report.json`` for ``checkpoint``; with ``baseline`` (the generative model) the
    same metrics for it on the same episodes, under ``generative``. With ``data``, the
    episodes are the shards there (``episodes``, ``seed`` and ``steps`` unused), taken by the
    camera of ``cell`` (default: the sim cell)."""
    if data is None and episodes < 2:
        raise ValueError(f"{episodes=} must be >= 2 (probes train and test on separate seeds)")
    model = load_checkpoint(checkpoint)
    base_model = load_checkpoint(baseline) if baseline is not None else None
    object_model = load_objects(objects) if objects is not None else None
    cfg = model.cfg
    report: dict = {"checkpoint": str(checkpoint)}
    if data is None:
        raw = collect_eval_episodes(episodes, seed, steps, cfg.image_size, n_objects)
        half = episodes // 2
        report |= {
            "episodes": episodes,
            "steps_per_episode": steps,
            "seed": seed,
            "probe_train_seeds": [seed, seed + half - 1],
            "probe_test_seeds": [seed + half, seed + episodes - 1],
        }
    else:
        raw = shard_eval_episodes(data)
        half = len(raw) // 2
        names = [_episode_name(e, i) for i, e in enumerate(raw)]
        report |= {
            "data": str(data),
            "episodes": len(raw),
            "steps_per_episode": [e.n_steps for e in raw],
            "probe_train_episodes": names[:half],
            "probe_test_episodes": names[half:],
            "label_sources": sorted(
                {str(e.meta.get("object_pos_source", "simulator")) for e in raw}
            ),
        }
    cell = cell or sim_cell()
    report["cell"] = cell.source or cell.name
    report["model_config"] = dataclasses.asdict(cfg)
    report["objects"] = None if objects is None else str(objects)
    report |= model_metrics(model, raw, half, cell, object_model)
    if base_model is not None:
        if base_model.cfg.image_size != cfg.image_size:
            raise CheckpointError(
                f"baseline image size {base_model.cfg.image_size} != model's {cfg.image_size}"
            )
        g = model_metrics(base_model, raw, half, cell)
        report["generative"] = {"checkpoint": str(baseline), **g}
        report["generative_obj_err_cm_h5"] = g["rollout_obj_err_cm_h5"]
        report["generative_probe_r2_objects"] = g["probe_r2_objects"]
    else:
        report["generative"] = None
    report["targets"] = {
        "effective_rank_min": 0.25 * cfg.latent_dim,
        "min_dim_std_min": 0.05,
        "probe_r2_tool_min": 0.95,
        "probe_r2_objects_min": 0.85,
        "rollout_error_ratio_h5_max": 0.5,
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
