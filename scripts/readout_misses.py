"""The object readout's misses on held-out scenes, by object colour, size and position.

For each seed: the scene as it starts (arm at home, out of the pick area's view, every object
on the table; or, with ``--arm-over-bin``, the arm moved to hover over a bin slot, where the
task used to declare done), one camera frame, the shipped encoder and readout. Each object
counts as found at a threshold when a detection lies within MATCH_RADIUS (xy) of its centre.
Detections that match no object are false positives. Ground truth comes from the simulator:
this is scoring, not the policy.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/readout_misses.py --seeds 400000 --count 300 \\
        --out out/readout_misses

Writes OUT/readout_misses.json (one row per object, and the summary) and logs the summary.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch

from wm_core.cell import sim_cell
from wm_core.plan.policy import DEFAULT_MODEL, load_bundle
from wm_core.robot import ArmKinematics
from wm_core.sim import SceneConfig, TableClearingEnv

log = logging.getLogger("readout_misses")

MATCH_RADIUS = 0.05  # m (xy): a detection this close to an object's centre finds it
THRESHOLDS = (0.5, 0.3, 0.2, 0.1)
TABLE_RGB = np.array([0.72, 0.6, 0.45])  # the sim cell's table colour (wm_core/sim/scene.py)


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114])


def pose_arm_over_bin(env, kin, seed: int) -> np.ndarray:
    """Put the arm (kinematically, no physics step) where the task used to declare done: the
    tool hovering over a bin slot; -> the new camera image [S, S, 3]."""
    import mujoco

    slot = seed % 4
    off = 0.055 * np.array([1 if slot % 2 else -1, 1 if slot // 2 else -1])
    goal = np.array([*(np.array(env.cell.bin.center) + off), env.cell.table.top_z + 0.22])
    ik = kin.ik_tool_down(goal, np.array(env.cell.arm.home_q), iters=60)
    env.data.qpos[env._qadr] = ik.q
    mujoco.mj_forward(env.model, env.data)
    return env.render("scene_cam")


@torch.no_grad()
def rows_for(env, model, readout, seed: int, kin=None) -> tuple[list[dict], dict]:
    obs, info = env.reset(seed)
    image = obs["image"] if kin is None else pose_arm_over_bin(env, kin, seed)
    img = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0  # [1, 3, S, S]
    z = model.encode(img)  # [1, N, D]
    logit, xyz = readout(z)  # [1, G, G], [1, G, G, 3]
    prob = torch.sigmoid(logit)[0].reshape(-1).numpy()  # [G*G]
    where = xyz[0].reshape(-1, 3).numpy()  # [G*G, 3]
    pos = info["object_pos"]  # [K, 3]
    dets = {t: readout.detect(z, t)[0] for t in THRESHOLDS}  # each [M, 4]
    rows = []
    for i, spec in enumerate(env.objects):
        rgb = np.array(spec.rgba[:3])
        near = np.linalg.norm(where[:, :2] - pos[i, :2], axis=1) < MATCH_RADIUS
        row = {
            "seed": seed,
            "shape": spec.shape,
            "rgb": [round(float(v), 3) for v in rgb],
            "luminance": round(float(luminance(rgb)), 3),
            "table_contrast": round(float(np.linalg.norm(rgb - TABLE_RGB)), 3),
            "half_size": [round(float(v), 4) for v in spec.half_size],
            "footprint_m": round(float(2 * max(spec.half_size[:2])), 4),
            "height_m": round(float(2 * spec.half_size[2]), 4),
            "pos": [round(float(v), 4) for v in pos[i]],
            "max_prob_near": round(float(prob[near].max()) if near.any() else 0.0, 4),
        }
        for t, d in dets.items():
            hit = np.linalg.norm(d[:, :2] - pos[i, :2], axis=1) < MATCH_RADIUS if len(d) else []
            row[f"found@{t}"] = bool(np.any(hit))
        rows.append(row)
    false_pos = {}
    for t, d in dets.items():
        dist = np.linalg.norm(d[:, None, :2] - pos[None, :, :2], axis=-1)  # [M, K]
        false_pos[t] = int((dist.min(axis=1) >= MATCH_RADIUS).sum()) if len(d) else 0
    return rows, false_pos


def binned(rows: list[dict], key, edges: list[float], thr: float) -> list[dict]:
    vals = np.array([key(r) for r in rows])
    miss = np.array([not r[f"found@{thr}"] for r in rows])
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (vals >= lo) & (vals < hi)
        if m.any():
            out.append({"range": [lo, hi], "objects": int(m.sum()), "missed": int(miss[m].sum())})
    return out


def summarise(rows: list[dict], false_pos: dict) -> dict:
    n = len(rows)
    s: dict = {"objects": n, "scenes": len({r["seed"] for r in rows})}
    for t in THRESHOLDS:
        s[f"missed@{t}"] = int(sum(not r[f"found@{t}"] for r in rows))
        s[f"false_positives@{t}"] = int(sum(fp[t] for fp in false_pos.values()))
    t = THRESHOLDS[0]
    s["by_luminance@0.5"] = binned(rows, lambda r: r["luminance"], [0, 0.25, 0.4, 0.55, 0.7, 1], t)
    s["by_table_contrast@0.5"] = binned(
        rows, lambda r: r["table_contrast"], [0, 0.15, 0.3, 0.45, 0.6, 2], t
    )
    s["by_footprint_m@0.5"] = binned(
        rows, lambda r: r["footprint_m"], [0.04, 0.048, 0.056, 0.065], t
    )
    s["by_height_m@0.5"] = binned(rows, lambda r: r["height_m"], [0.04, 0.048, 0.056, 0.065], t)
    s["by_x@0.5"] = binned(rows, lambda r: r["pos"][0], [0.3, 0.4, 0.5, 0.65], t)
    s["by_y@0.5"] = binned(rows, lambda r: r["pos"][1], [-0.32, -0.15, 0.0, 0.12, 0.25], t)
    s["by_shape@0.5"] = {
        sh: {
            "objects": sum(r["shape"] == sh for r in rows),
            "missed": sum(r["shape"] == sh and not r[f"found@{t}"] for r in rows),
        }
        for sh in ("box", "cylinder")
    }
    s["missed_max_prob_near@0.5"] = sorted(r["max_prob_near"] for r in rows if not r[f"found@{t}"])
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=400_000, help="first seed")
    ap.add_argument("--count", type=int, default=300, help="scenes")
    ap.add_argument("--objects", type=int, default=3, help="objects per scene")
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument(
        "--arm-over-bin",
        action="store_true",
        help="read with the tool hovering over a bin slot (where the task used to declare "
        "done) instead of at home",
    )
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    cell = sim_cell()
    model, readout = load_bundle(Path(args.model), cell=cell)
    env = TableClearingEnv(SceneConfig(n_objects=args.objects), cell)
    kin = ArmKinematics(base_pose=cell.arm.T_world_base) if args.arm_over_bin else None
    rows, false_pos = [], {}
    try:
        for seed in range(args.seeds, args.seeds + args.count):
            r, fp = rows_for(env, model, readout, seed, kin)
            rows += r
            false_pos[seed] = fp
    finally:
        env.close()
    summary = summarise(rows, false_pos)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "readout_misses.json").write_text(
        json.dumps({"summary": summary, "objects": rows}, indent=1) + "\n"
    )
    log.info("%s", json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
