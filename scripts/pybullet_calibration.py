"""Calibrate the PyBullet world's camera the way a user calibrates a real one (README, "A second
world"), and measure the result against the pose the world renders from.

1. the world node (``wm_pybullet``) with the ChArUco board fixed beside the cup
   (``calibration_board:=true``) and a 1280 px camera, on its own (no brain nodes);
2. ``wm calibrate collect`` with the camera's intrinsics (the cell's K at that size): it pairs
   each still view of the board with the tool pose from ``/joint_states``;
3. a scripted sweep, as a user would send one: joint trajectories to seeded
   poses over the table (the tool 20-32 cm up, the wrist turned by up to 0.35 rad), on the
   spawned world's own input topic (remapped from the JTC topic: it refuses when anything
   else reads it, so it can never drive another arm on the domain), holding
   each until ``/joint_states`` has read it, still, ``--still-states`` times (a large render
   makes the world slower than real time, so the hold is counted in joint states, not
   seconds);
4. ``wm calibrate handeye --mode eye-to-hand``; its ``T_world_cam`` is compared with the cell
   file's (the world renders from the cell's camera: that is the truth here).

Writes ``OUT/camera_info.yaml``, ``OUT/samples.yaml``, ``OUT/handeye.yaml``, the node and
collector logs and ``OUT/calibration.json`` (views, residuals, pose error). Use a free
``ROS_DOMAIN_ID``.

    .venv/bin/python scripts/pybullet_calibration.py --out out/pb_calib [--samples 15]
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
import yaml
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory
from wm_bringup.msgs import arm_joint_names, joint_state_arrays, make_trajectory
from wm_bringup.nodekit import RELIABLE_QOS

from wm_core.calib.intrinsics import CameraIntrinsics
from wm_core.calib.io import write_camera_info
from wm_core.cell import PYBULLET_CELL_FILE, load_cell
from wm_core.robot import ArmKinematics

log = logging.getLogger("pybullet_calibration")
BOARD_ARGS = ["--board", "charuco", "--cols", "5", "--rows", "4", "--square", "0.04"]
BOARD_ARGS += ["--marker", "0.03"]  # wm_core.sim.calibration.BOARD, the board on the tool


def sweep(kin: ArmKinematics, home: np.ndarray, top_z: float, n: int, seed: int) -> np.ndarray:
    """``n`` joint configurations [n, 6] over the table, the wrist turned for variety."""
    rng = np.random.default_rng([seed, 0xCA1])
    out = []
    while len(out) < n:
        z = top_z + rng.uniform(0.2, 0.32)
        target = np.array([rng.uniform(0.35, 0.6), rng.uniform(-0.2, 0.25), z])
        ik = kin.ik_tool_down(target, home, iters=100)
        if ik.converged:
            out.append(ik.q + np.concatenate([np.zeros(3), rng.uniform(-0.35, 0.35, 3)]))
    return np.array(out)


SWEEP_TOPIC = "/wm_calibration_sweep/joint_trajectory"
"""The spawned world's trajectory input (remapped): nothing else listens there."""


def _spawn(cmd: list[str], log_file: Path) -> subprocess.Popen:
    with open(log_file, "wb") as f:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--samples", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--image-width", type=int, default=1024)
    ap.add_argument("--still-states", type=int, default=4, help="still joint states per pose")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="[pybullet_calibration] %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cell = load_cell(PYBULLET_CELL_FILE)
    cam = cell.camera
    w = args.image_width
    h = round(w * cam.height / cam.width)
    info = write_camera_info(
        out / "camera_info.yaml",
        CameraIntrinsics("pybullet_scene_cam", w, h, cam.k_for(w, h), np.asarray(cam.D)),
    )
    node_cmd = [sys.executable, "-m", "wm_pybullet.pybullet_node", "--ros-args"]
    for p in ("calibration_board:=true", f"image_width:={w}", "n_objects:=1", "cmd_timeout:=0.0"):
        node_cmd += ["-p", p]
    # the sweep drives the world it spawned, on a topic of its own: never a real arm's
    # controller (those take commands only through the safety node) on a shared domain
    node_cmd += ["-r", f"/arm_controller/joint_trajectory:={SWEEP_TOPIC}"]
    wm = str(Path(sys.executable).with_name("wm"))
    collect_cmd = [wm, "calibrate", "collect", "--camera-info", str(info), *BOARD_ARGS]
    collect_cmd += ["--samples", str(args.samples), "--out", str(out / "samples.yaml")]
    collect_cmd += ["--timeout", "900"]
    world = _spawn(node_cmd, out / "world.log")
    collector = _spawn(collect_cmd, out / "collect.log")
    rclpy.init()
    node = rclpy.create_node("wm_calibration_sweep")
    pub = node.create_publisher(JointTrajectory, SWEEP_TOPIC, RELIABLE_QOS)
    states: list[np.ndarray] = []
    names = list(arm_joint_names())
    node.create_subscription(
        JointState,
        "/joint_states",
        lambda m: states.append(joint_state_arrays(m, names)[0]),
        RELIABLE_QOS,
    )
    t0 = time.monotonic()
    try:
        while pub.get_subscription_count() == 0 and time.monotonic() - t0 < 120:
            rclpy.spin_once(node, timeout_sec=0.2)
        readers = node.get_subscriptions_info_by_topic(SWEEP_TOPIC)
        if [i.node_name for i in readers] != ["wm_pybullet"]:
            log.error(
                "%s is read by %s, not the spawned world alone: not sweeping",
                SWEEP_TOPIC,
                [i.node_name for i in readers],
            )
            return 1
        kin = ArmKinematics(base_pose=cell.arm.T_world_base)
        poses = sweep(
            kin, np.asarray(cell.arm.home_q), cell.table.top_z, 3 * args.samples, args.seed
        )
        for i, q in enumerate(poses):
            if collector.poll() is not None:
                break
            pub.publish(make_trajectory(names, q[None], [1.0], None))
            log.info("pose %d/%d", i + 1, len(poses))
            still, end = 0, time.monotonic() + 120
            while still < args.still_states and time.monotonic() < end:
                n = len(states)
                rclpy.spin_once(node, timeout_sec=0.1)
                if len(states) > n:
                    at = np.abs(states[-1] - q).max() < 0.003
                    moved = n > 0 and np.abs(states[-1] - states[n - 1]).max() > 0.001
                    still = still + 1 if at and not moved else 0
        collector.wait(timeout=60)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        for proc in (collector, world):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)
    if not (out / "samples.yaml").is_file():
        log.error(
            "the collector did not get %d samples (see %s)", args.samples, out / "collect.log"
        )
        return 1
    handeye = [wm, "calibrate", "handeye", "--samples", str(out / "samples.yaml")]
    handeye += ["--mode", "eye-to-hand", "--method", "all", "--out", str(out / "handeye.yaml")]
    r = subprocess.run(handeye, capture_output=True, text=True)
    (out / "handeye.log").write_text(r.stdout + r.stderr)
    if r.returncode:
        log.error("wm calibrate handeye failed: %s", r.stderr.strip())
        return 1
    result = yaml.safe_load((out / "handeye.yaml").read_text())
    got = np.array(result["camera"]["T_world_cam"], float)
    truth = cam.pose  # the world renders from the cell's camera
    d_rot = truth[:3, :3].T @ got[:3, :3]
    angle = float(np.degrees(np.arccos(np.clip((np.trace(d_rot) - 1) / 2, -1.0, 1.0))))
    summary = {
        "views": len(yaml.safe_load((out / "samples.yaml").read_text())["samples"]),
        "image_size": [w, h],
        "handeye": result.get("handeye"),
        "pose_error_translation_mm": float(np.linalg.norm(got[:3, 3] - truth[:3, 3]) * 1e3),
        "pose_error_rotation_deg": angle,
        "wall_s": round(time.monotonic() - t0, 1),
    }
    (out / "calibration.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(r.stdout.strip())
    print(
        f"camera pose error against the cell's: {summary['pose_error_translation_mm']:.2f} mm, "
        f"{angle:.3f} deg from {summary['views']} views"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
