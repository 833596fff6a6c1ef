"""``wm evaluate-model``: collapse metrics, linear probes and open-loop rollout error.

Held-out episodes are collected fresh from seeds ``seed .. seed+episodes-1`` (noisy oracle and
mixed exploration, so objects move). Probes are ridge regressions fitted on the first half of
the episodes and scored (R^2) on the second half: different seeds, different scenes.

- Collapse: ``min_dim_std``, ``effective_rank`` (RankMe), ``embedding_dim`` of patch latents.
- ``probe_r2_tool``: model state (image latent + proprioception) -> tool position.
- ``probe_r2_objects``: image latent alone -> object positions (never proprioception).
- ``rollout_error_h{1,5,10}``: predicted state against the encoder of the true future frame and
  the true proprioception, each dimension normalised by its std over the test set; copy-last
  (predict no change) gets the same treatment, and ``rollout_error_ratio_h5`` = ours/copy-last.
- ``rollout_obj_err_cm_h5``: the object probe on the 5-step prediction, in windows where an
  object moved > 1 cm, against the true object positions; beside copy-last.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import torch

from wm_core.data.collect import CollectConfig, collect_episode
from wm_core.models.checkpoint import CheckpointError, load_checkpoint  # noqa: F401 (re-export)
from wm_core.models.losses import effective_rank
from wm_core.robot import ArmKinematics
from wm_core.sim import SceneConfig
from wm_core.train.data import proprio_from_obs

log = logging.getLogger(__name__)

HORIZONS = (1, 5, 10)


def _ridge(x: np.ndarray, y: np.ndarray, lam: float = 1e-2):
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xs = (x - mu) / sd
    xs1 = np.concatenate([xs, np.ones((len(xs), 1))], 1)
    w = np.linalg.solve(xs1.T @ xs1 + lam * len(xs) * np.eye(xs1.shape[1]), xs1.T @ y)
    return lambda q: np.concatenate([(q - mu) / sd, np.ones((len(q), 1))], 1) @ w


def _r2(pred: np.ndarray, y: np.ndarray) -> float:
    ss_res = ((pred - y) ** 2).sum(0)
    ss_tot = ((y - y.mean(0)) ** 2).sum(0) + 1e-12
    return float(np.mean(1 - ss_res / ss_tot))


@torch.no_grad()
def evaluate_model(
    checkpoint: Path, episodes: int, seed: int, out: Path, steps: int = 120, n_objects: int = 3
) -> dict:
    if episodes < 2:
        raise ValueError(f"{episodes=} must be >= 2 (probes train and test on separate seeds)")
    model = load_checkpoint(checkpoint)
    cfg = model.cfg
    kin = ArmKinematics()
    ccfg = CollectConfig(
        steps_per_episode=steps, image_size=cfg.image_size, mode_weights=(0.0, 0.6, 0.4)
    )
    eps = []
    for s in range(seed, seed + episodes):
        ep = collect_episode(s, SceneConfig(n_objects=n_objects), ccfg)
        img = torch.from_numpy(ep.obs["image"]).permute(0, 3, 1, 2).float() / 255.0
        z = model.encode(img)  # [T+1, N, D]
        p = torch.from_numpy(proprio_from_obs(kin, ep.obs["joint_pos"], ep.obs["suction"]))
        eps.append(
            {
                "z": z,
                "p": p,
                "a": torch.from_numpy(ep.action),
                "tool": ep.labels["tool_pos"],
                "obj": ep.labels["object_pos"],
            }
        )
    half = episodes // 2
    train_eps, test_eps = eps[:half], eps[half:]

    emb = torch.cat([e["z"].flatten(0, 1) for e in eps])  # [M, D]
    report: dict = {
        "checkpoint": str(checkpoint),
        "episodes": episodes,
        "seed": seed,
        "probe_train_seeds": [seed, seed + half - 1],
        "probe_test_seeds": [seed + half, seed + episodes - 1],
        "model_config": dataclasses.asdict(cfg),
        "embedding_dim": cfg.latent_dim,
        "min_dim_std": float(emb.std(0).min()),
        "effective_rank": effective_rank(emb),
    }

    def feats(e, with_proprio: bool) -> np.ndarray:
        f = e["z"].flatten(1).numpy()  # [T+1, N*D]
        return np.concatenate([f, e["p"].numpy()], 1) if with_proprio else f

    xtr = np.concatenate([feats(e, True) for e in train_eps])
    xte = np.concatenate([feats(e, True) for e in test_eps])
    tool_probe = _ridge(xtr, np.concatenate([e["tool"] for e in train_eps]))
    report["probe_r2_tool"] = _r2(tool_probe(xte), np.concatenate([e["tool"] for e in test_eps]))
    otr = np.concatenate([feats(e, False) for e in train_eps])
    ote = np.concatenate([feats(e, False) for e in test_eps])
    ytr = np.concatenate([e["obj"].reshape(len(e["obj"]), -1) for e in train_eps])
    yte = np.concatenate([e["obj"].reshape(len(e["obj"]), -1) for e in test_eps])
    obj_probe = _ridge(otr, ytr)
    report["probe_r2_objects"] = _r2(obj_probe(ote), yte)

    # open-loop rollouts on the test episodes
    state_std = torch.cat([torch.cat([e["z"].flatten(1), e["p"]], 1) for e in test_eps]).std(0)
    state_std = state_std + 1e-6  # [N*D + 10]
    errs = {h: [] for h in HORIZONS}
    base = {h: [] for h in HORIZONS}
    obj_err, obj_base = [], []
    hmax = max(HORIZONS)
    for e in test_eps:
        t_max = e["a"].shape[0] - hmax
        if t_max <= 0:
            continue
        starts = torch.arange(0, t_max, 2)
        acts = torch.stack([e["a"][t : t + hmax] for t in starts])  # [S, H, 4]
        zr, pr = model.rollout(e["z"][starts], e["p"][starts], acts)  # [S, H, N, D], [S, H, 10]
        for h in HORIZONS:
            pred = torch.cat([zr[:, h - 1].flatten(1), pr[:, h - 1]], 1)
            true = torch.cat([e["z"][starts + h].flatten(1), e["p"][starts + h]], 1)
            last = torch.cat([e["z"][starts].flatten(1), e["p"][starts]], 1)
            errs[h].append((((pred - true) / state_std) ** 2).mean(1))
            base[h].append((((last - true) / state_std) ** 2).mean(1))
        obj_t = e["obj"][starts.numpy()]  # [S, K, 3]
        obj_h5 = e["obj"][starts.numpy() + 5]
        moved = np.linalg.norm(obj_h5 - obj_t, axis=-1).max(-1) > 0.01  # [S]
        if moved.any():
            pred_obj = obj_probe(zr[:, 4].flatten(1).numpy()).reshape(obj_h5.shape)
            last_obj = obj_probe(e["z"][starts].flatten(1).numpy()).reshape(obj_h5.shape)
            obj_err.append(np.linalg.norm(pred_obj - obj_h5, axis=-1)[moved].mean(-1))
            obj_base.append(np.linalg.norm(last_obj - obj_h5, axis=-1)[moved].mean(-1))
    for h in HORIZONS:
        report[f"rollout_error_h{h}"] = float(torch.cat(errs[h]).mean()) if errs[h] else None
        report[f"copy_last_error_h{h}"] = float(torch.cat(base[h]).mean()) if base[h] else None
    if report["rollout_error_h5"] is not None:
        report["rollout_error_ratio_h5"] = report["rollout_error_h5"] / max(
            report["copy_last_error_h5"], 1e-12
        )
    report["rollout_obj_err_cm_h5"] = (
        float(np.concatenate(obj_err).mean() * 100) if obj_err else None
    )
    report["copy_last_obj_err_cm_h5"] = (
        float(np.concatenate(obj_base).mean() * 100) if obj_base else None
    )
    report["generative_baseline"] = "not built yet (issue 3 open)"
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
