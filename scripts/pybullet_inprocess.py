"""The brain against the PyBullet world in one process, without ROS and without real-time
pacing: for quick comparisons of models and readouts while adapting the stack to that world.

    .venv/bin/python scripts/pybullet_inprocess.py --model DIR --episodes 10 --seed 510000
        [--objects 3] [--oracle-detections] [--out FILE.json]

Each tick mirrors the stack's: the world's camera image (160 x 120) and joints go to
``LatentMPCPolicy.act``; its first action becomes a joint target through the planner's own
inverse kinematics (``basis_joints`` + ``joint_target``, as ``planner_node._to_joints``);
the hard ``SafetyFilter`` passes, clamps or holds it; the world steps. It is a development
tool, not the measurement: the figures that count come from ``wm up pybullet`` through the
ROS stack (other latencies, a trajectory of several points per plan).

``--oracle-detections`` is a diagnostic that replaces the readout's detections with the
world's ground truth (objects still on the table): it tells whether the planner and task layer
clear the table when perception is perfect. It reads privileged state and is never part of
the stack. Prints one JSON line (the per-episode figures with ``--out``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from wm_core.cell import PYBULLET_CELL_FILE, load_cell
from wm_core.plan.policy import LatentMPCPolicy
from wm_core.pybullet_world import PyBulletWorldConfig
from wm_core.pybullet_world.world import PyBulletWorld
from wm_core.robot import ArmKinematics
from wm_core.robot.action import basis_joints, joint_target
from wm_core.safety import FilterConfig, SafetyFilter
from wm_core.sim import SceneConfig


def oracle(world: PyBulletWorld):
    """detect(z, threshold) -> the true positions of the objects on the table (diagnostic)."""

    def detect(z, threshold=0.5, min_separation=0.05):
        info = world.info()
        on = ~(info["cleared"] | info["held"] | info["dropped"])
        pos = info["object_pos"][on]  # [M, 3]
        return [np.concatenate([pos, np.ones((len(pos), 1))], axis=1).astype(np.float32)]

    return detect


def episode(world, policy, flt, kin, cell, seed: int, step_m: float) -> dict:
    world.reset(seed)
    policy.reset(seed)
    q0, _ = world.joint_state()
    flt.reset(q0, suction=False)
    lo, hi = np.array(cell.workspace_lo), np.array(cell.workspace_hi)
    sent, statuses, t0 = None, {}, time.perf_counter()
    while True:
        obs = world.observation()
        a = policy.act(obs)
        q = obs["joint_pos"].astype(float)
        basis = basis_joints(kin, q, sent)
        t = joint_target(kin, a, basis, lo, hi, step_m)
        res = flt.filter(t.q if t.converged else basis, bool(a[3] > 0), q)
        statuses[res.status] = statuses.get(res.status, 0) + 1
        q_cmd = world.q_cmd if res.q is None else res.q
        sent = q_cmd
        terminated, truncated = world.step_joint(q_cmd, res.suction)
        if terminated or truncated or policy.done:
            break
    m = world.episode_metrics()
    events = {k: v for k, v in m["safety"].items() if v}
    info = world.info()
    left = int((~(info["cleared"] | info["dropped"])).sum())
    return {
        "seed": seed,
        "objects": m["objects"],
        "cleared": m["cleared"],
        "dropped": m["dropped"],
        "sim_time_s": round(m["sim_time_s"], 1),
        "ended": "done" if policy.done else ("cleared" if terminated else "time limit"),
        "false_done": bool(policy.done and left > 0),
        "safety_events": events,
        "filter": statuses,
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/default")
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=510000)
    ap.add_argument("--objects", type=int, default=3)
    ap.add_argument("--oracle-detections", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cell = load_cell(PYBULLET_CELL_FILE)
    world = PyBulletWorld(PyBulletWorldConfig(n_objects=args.objects), cell)
    policy = LatentMPCPolicy(cell=cell, model_dir=args.model)
    if args.oracle_detections:
        policy.readout.detect = oracle(world)
    flt = SafetyFilter(FilterConfig(control_dt=1 / world.cfg.control_hz), cell)
    kin = ArmKinematics(base_pose=cell.arm.T_world_base)
    step_m = SceneConfig().max_tool_step
    rows = []
    try:
        for seed in range(args.seed, args.seed + args.episodes):
            rows.append(episode(world, policy, flt, kin, cell, seed, step_m))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    finally:
        world.close()
    objects = sum(r["objects"] for r in rows)
    cleared = sum(r["cleared"] for r in rows)
    summary = {
        "model": args.model,
        "oracle_detections": args.oracle_detections,
        "episodes": len(rows),
        "seeds": [args.seed, args.seed + args.episodes - 1],
        "cleared": cleared,
        "objects": objects,
        "clear_rate": round(cleared / max(objects, 1), 3),
        "full_clears": sum(r["cleared"] == r["objects"] for r in rows),
        "false_dones": sum(r["false_done"] for r in rows),
        "episodes_with_safety_events": sum(bool(r["safety_events"]) for r in rows),
    }
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "episodes": rows}, indent=1))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
