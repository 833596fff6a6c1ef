"""How well object readouts find the PyBullet world's objects, scored against its ground truth:
fresh scenes (seeds never recorded) rendered in process with the arm at home, each model
directory's readout run on the frames as the stack runs it, and its table detections (outside
the bin, as the task layer reads them) matched to the true objects.

    .venv/bin/python scripts/pybullet_readout_check.py --model DIR [DIR ...] \
        [--scenes 60] [--seed 520000] [--objects 3] [--match-cm 4]

Prints one JSON line per model and threshold: recall (true objects with a detection within
``--match-cm`` in xy), false detections per frame, and the matched detections' mean error.
Ground truth is used here only to score (a check, not a step of the loop)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

import numpy as np

from wm_core.cell import PYBULLET_CELL_FILE, load_cell
from wm_core.eval.detection import readout_maps, score_detections
from wm_core.plan.policy import LatentMPCPolicy
from wm_core.pybullet_world import PyBulletWorldConfig
from wm_core.pybullet_world.world import PyBulletWorld

THRESHOLDS = (0.2, 0.5, 0.7)


def scenes(n: int, seed: int, objects: int, cell) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Camera images [H, W, 3] and true object centres [K, 3] of ``n`` fresh scenes."""
    world = PyBulletWorld(PyBulletWorldConfig(n_objects=objects), cell)
    images, truth = [], []
    try:
        for s in range(seed, seed + n):
            world.reset(s)
            images.append(world.render())
            truth.append(world.object_positions())
    finally:
        world.close()
    return images, truth


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", nargs="+", required=True, help="model directories")
    ap.add_argument("--scenes", type=int, default=60)
    ap.add_argument("--seed", type=int, default=520000)
    ap.add_argument("--objects", type=int, default=3)
    ap.add_argument("--match-cm", type=float, default=4.0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cell = load_cell(PYBULLET_CELL_FILE)
    images, truth = scenes(args.scenes, args.seed, args.objects, cell)
    for model_dir in args.model:
        policy = LatentMPCPolicy(cell=cell, model_dir=model_dir)
        maps = readout_maps(policy, images)  # each [1, 4, G, G]
        for t in THRESHOLDS:
            found = [policy.readout.detect_map(m, t)[0] for m in maps]
            row = {"model": model_dir, "source": policy.readout.source, "threshold": t}
            row |= score_detections(found, truth, cell, args.match_cm / 100)
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
