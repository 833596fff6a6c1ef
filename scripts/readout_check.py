"""Object-readout detection on the first frame of simulated episodes, against the truth.

    python scripts/readout_check.py --model models/default --seed 130000 --episodes 20 \
        --camera-jitter 3 --light-jitter 0.3

For each episode: the readout's detections (threshold 0.5) with per-patch priors from (a) the
cell file's nominal camera and (b) the episode's true (jittered) camera, the calibrated case's
upper bound. An object is found when a detection lies within 4 cm of it in xy; a detection
farther than 4 cm from every object is a false positive. Evaluation only: it reads the
simulator's object and camera poses.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

from wm_core.cell import sim_cell
from wm_core.plan.policy import load_bundle
from wm_core.sim import SceneConfig, TableClearingEnv
from wm_core.train.readout import priors_for

MATCH_M = 0.04


def score(dets: np.ndarray, objs: np.ndarray) -> tuple[list[float], int, int]:
    """(xy errors of found objects (m), misses, false positives)."""
    errs, miss = [], 0
    for o in objs:
        d = np.hypot(*(dets[:, :2] - o[:2]).T).min() if len(dets) else np.inf
        if d > MATCH_M:
            miss += 1
        else:
            errs.append(float(d))
    fp = sum(np.hypot(*(objs[:, :2] - d[:2]).T).min() > MATCH_M for d in dets)
    return errs, miss, int(fp)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/default", help="model dir (model.pt, readout.pt)")
    ap.add_argument("--seed", type=int, default=130000)
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--camera-jitter", type=float, default=3.0)
    ap.add_argument("--light-jitter", type=float, default=0.3)
    args = ap.parse_args(argv)
    cell = sim_cell()
    model, readout = load_bundle(Path(args.model), cell=cell)
    nominal = readout.priors.clone()
    env = TableClearingEnv(
        SceneConfig(camera_jitter_deg=args.camera_jitter, light_jitter=args.light_jitter), cell
    )
    totals = {"nominal camera": [[], 0, 0], "true camera": [[], 0, 0]}
    for seed in range(args.seed, args.seed + args.episodes):
        obs, info = env.reset(seed)
        objs = np.asarray(info["object_pos"])  # [K, 3]
        pose = tuple(tuple(r) for r in np.asarray(env.camera_info().T_world_cam).tolist())
        true_cell = cell.with_camera(dataclasses.replace(cell.camera, T_world_cam=pose))
        x = torch.from_numpy(obs["image"][None]).permute(0, 3, 1, 2).float() / 255.0
        with torch.no_grad():
            z = model.encode(x)  # [1, N, D]
        for name, priors in (("nominal camera", nominal), ("true camera", None)):
            readout.priors.copy_(
                priors if priors is not None else torch.as_tensor(priors_for(model, true_cell))
            )
            e, m, f = score(readout.detect(z, 0.5)[0], objs)
            totals[name][0] += e
            totals[name][1] += m
            totals[name][2] += f
    env.close()
    n = args.episodes * env.cfg.n_objects
    for name, (e, m, f) in totals.items():
        print(
            f"{name}: {n - m}/{n} objects found, mean xy error {np.mean(e) * 100:.2f} cm, "
            f"{f} false positives"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
