"""How far the robot's own object labels (``wm_core.data.grip_labels``) are from the PyBullet
world's ground truth: the world's scripted teleoperator clears scenes in process, and each
scene's labels, made from the cup's path and the vacuum switch alone, are compared with the
objects' true positions, per frame and object (cm), on the table and over all frames.

    .venv/bin/python scripts/grip_label_check.py [--scenes 10] [--objects 3] [--seed 700000]

Prints one JSON line. Ground truth is used here only to score the labels (a check, not a step
of the loop)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ros_ws/src/wm_pybullet"))
from wm_pybullet.teleop import ScriptedTeleop  # noqa: E402

from wm_core.cell import PYBULLET_CELL_FILE, load_cell  # noqa: E402
from wm_core.data.grip_labels import scene_labels  # noqa: E402
from wm_core.pybullet_world import PyBulletWorldConfig  # noqa: E402
from wm_core.pybullet_world.world import PyBulletWorld  # noqa: E402


def stats(x: np.ndarray) -> dict:
    return {
        "mean": round(float(x.mean()), 2),
        "p95": round(float(np.percentile(x, 95)), 2),
        "max": round(float(x.max()), 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=10)
    ap.add_argument("--objects", type=int, default=3)
    ap.add_argument("--seed", type=int, default=700000)
    ap.add_argument("--max-steps", type=int, default=600)
    args = ap.parse_args()
    cell = load_cell(PYBULLET_CELL_FILE)
    world = PyBulletWorld(PyBulletWorldConfig(n_objects=args.objects), cell)
    teleop = ScriptedTeleop(cell)
    on_table_err, all_err, explained, reasons = [], [], 0, []
    try:
        for seed in range(args.seed, args.seed + args.scenes):
            world.reset(seed)
            teleop.reset(seed)
            tool, held, truth, on_table = [], [], [], []
            for _ in range(args.max_steps):
                info = world.info()
                tool.append(info["tool_pos"])  # what FK of the measured joints gives
                held.append(bool(info["held"].any()))  # what the vacuum switch reads
                truth.append(info["object_pos"])
                on_table.append(~(info["cleared"] | info["held"]))
                if info["cleared"].all():
                    break
                world.step_joint(*teleop.command(info, world.joint_state()[0]))
            got = scene_labels(np.array(tool), np.array(held), cell, args.objects)
            if not got.explained:
                reasons.append(f"{seed}: {got.reason}")
                continue
            explained += 1
            truth_a = np.array(truth)  # [T, K, 3]
            lab = got.object_pos  # [T, K, 3], objects in the order they were gripped
            order = np.linalg.norm(lab[0][:, None] - truth_a[0][None], axis=-1).argmin(1)
            err = np.linalg.norm(lab - truth_a[:, order], axis=-1) * 100  # [T, K] cm
            on_table_err.append(err[np.array(on_table)[:, order]])
            all_err.append(err.ravel())
    finally:
        world.close()
    out = {"scenes": args.scenes, "explained": explained, "not_explained": reasons}
    if explained:
        out |= {
            "on_table_cm": stats(np.concatenate(on_table_err)),
            "all_frames_cm": stats(np.concatenate(all_err)),
        }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
