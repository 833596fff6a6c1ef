"""Object-readout detection on the first frame of simulated MuJoCo episodes, against the truth.

    .venv/bin/python scripts/readout_check.py --model models/default [DIR ...] \
        --seed 130000 --episodes 20 [--objects 3] [--camera-jitter 3] [--light-jitter 0.3] \
        [--camera-shift M] [--appearance-jitter FRAC] [--table-height-jitter M]

For each model directory and each episode, the readout's detections (threshold 0.5, as the
stack runs it: ``wm_core.eval.detection``) with per-patch priors from (a) the cell file's
nominal camera and table, what an uncalibrated stack uses, and (b) the episode's true
(jittered) camera and table height, the calibrated case's upper bound. An object is found when
a detection outside the bin lies within 4 cm of it in xy; the others are false detections.
Prints one JSON line per model and case. Evaluation only: it reads the simulator's object and
camera poses.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys

import numpy as np
import torch

from wm_core.cell import sim_cell
from wm_core.eval.detection import readout_maps, score_detections
from wm_core.plan.policy import LatentMPCPolicy
from wm_core.sim import SceneConfig, TableClearingEnv
from wm_core.train.readout import priors_for

THRESHOLD = 0.5


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", nargs="+", default=["models/default"], help="model directories")
    ap.add_argument("--seed", type=int, default=130000)
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--objects", type=int, default=3)
    ap.add_argument("--camera-jitter", type=float, default=3.0)
    ap.add_argument("--light-jitter", type=float, default=0.3)
    ap.add_argument("--camera-shift", type=float, default=0.0)
    ap.add_argument("--appearance-jitter", type=float, default=0.0)
    ap.add_argument("--table-height-jitter", type=float, default=0.0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    cfg = SceneConfig(
        n_objects=args.objects,
        camera_jitter_deg=args.camera_jitter,
        light_jitter=args.light_jitter,
        camera_shift=args.camera_shift,
        appearance_jitter=args.appearance_jitter,
        table_height_jitter=args.table_height_jitter,
    )
    cell = sim_cell()
    env = TableClearingEnv(cfg, cell)
    images, truth, true_cells = [], [], []
    for seed in range(args.seed, args.seed + args.episodes):
        obs, info = env.reset(seed)
        images.append(obs["image"])
        truth.append(np.asarray(info["object_pos"]))  # [K, 3]
        pose = tuple(tuple(r) for r in np.asarray(env.camera_info().T_world_cam).tolist())
        true_cells.append(env.cell.with_camera(dataclasses.replace(cell.camera, T_world_cam=pose)))
    env.close()
    for model_dir in args.model:
        policy = LatentMPCPolicy(cell=cell, model_dir=model_dir)
        readout, source = policy.readout, policy.readout.source
        nominal = readout.priors.clone()
        maps = readout_maps(policy, images)  # each [1, 4, G, G]
        for case in ("nominal camera and table", "true camera and table"):
            found = []
            for m, true_cell in zip(maps, true_cells, strict=True):
                if case.startswith("true"):
                    readout.priors.copy_(
                        torch.as_tensor(priors_for(policy.model, true_cell, source))
                    )
                else:
                    readout.priors.copy_(nominal)
                found.append(readout.detect_map(m, THRESHOLD)[0])
            row = {"model": model_dir, "source": source, "case": case}
            row |= score_detections(found, truth, cell)
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
