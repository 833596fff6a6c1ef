"""wm calibrate collect: board views + /joint_states over DDS -> a samples file from which
hand-eye calibration recovers the camera the images were rendered with."""

from __future__ import annotations

import numpy as np
import pytest

DOMAIN = 196  # this module uses 196

pytest.importorskip("rclpy")

from sensor_msgs.msg import Image, JointState  # noqa: E402
from wm_bringup.calibration_collector import CalibrationCollector, CollectConfig  # noqa: E402
from wm_bringup.msgs import SUCTION_JOINT, arm_joint_names  # noqa: E402
from wm_bringup.nodekit import RELIABLE_QOS, SENSOR_QOS  # noqa: E402

from wm_core.calib import BoardSpec, CameraIntrinsics, calibrate_handeye  # noqa: E402
from wm_core.calib.io import read_handeye_samples  # noqa: E402
from wm_core.calib.synthetic import board_image, look_at, render_view  # noqa: E402
from wm_core.cell import sim_cell  # noqa: E402
from wm_core.robot import ArmKinematics  # noqa: E402

BOARD = BoardSpec("charuco", 5, 4, 0.04, 0.03)
K = np.array([[1200.0, 0, 640], [0, 1200.0, 480], [0, 0, 1]])  # a 1280 x 960 camera
T_BASE_CAM = look_at(np.array([1.1, -0.1, 0.8]), np.array([0.45, 0.0, 0.05]))  # the truth
T_TOOL_BOARD = np.eye(4)
T_TOOL_BOARD[:3, 3] = (-0.1, -0.08, 0.02)  # beside the cup, its normal along the tool's z


def poses(n: int) -> list[np.ndarray]:
    kin, rng = ArmKinematics(), np.random.default_rng(0)
    home = np.array(sim_cell().arm.home_q)
    out = []
    while len(out) < n:
        t = np.array([rng.uniform(0.35, 0.55), rng.uniform(-0.15, 0.15), rng.uniform(0.2, 0.3)])
        ik = kin.ik_tool_down(t, home)
        if ik.converged:
            out.append(ik.q + np.concatenate([np.zeros(3), rng.uniform(-0.3, 0.3, 3)]))
    return out


def test_collected_samples_give_back_the_camera(tmp_path):
    from ros_harness import Ros

    ros = Ros(DOMAIN)
    intr = CameraIntrinsics("test", 1280, 960, K, np.zeros(5))
    cfg = CollectConfig(BOARD, intr, "camera.yaml", samples=12)
    node = ros.add(CalibrationCollector(cfg, context=ros.context))
    kin, printed, names = ArmKinematics(), board_image(BOARD, 100), arm_joint_names()
    joints = ros.publisher(JointState, "/joint_states", RELIABLE_QOS)
    camera = ros.publisher(Image, "/camera/image_raw", SENSOR_QOS)
    arm = {"q": None}

    def tick() -> None:  # the arm: joint states at 50 Hz
        if arm["q"] is not None:
            joints.publish(JointState(name=[*names, SUCTION_JOINT], position=[*arm["q"], 0.0]))

    def frame() -> None:  # the camera: what it sees of the board, 10 Hz
        if arm["q"] is None:
            return
        t_base_board = kin.link_frames(np.array(arm["q"]))["suction_cup"] @ T_TOOL_BOARD
        gray = render_view(printed, K, np.linalg.inv(T_BASE_CAM) @ t_base_board, (1280, 960))
        camera.publish(
            Image(height=960, width=1280, encoding="mono8", step=1280, data=gray.tobytes())
        )

    ros.probe.create_timer(0.02, tick)
    ros.probe.create_timer(0.1, frame)
    try:
        assert ros.spin_until(ros.linked)
        for i, q in enumerate(poses(20)):
            arm["q"] = [float(x) for x in q]  # move, then hold still at the pose
            ros.spin_until(lambda n=i: node.done or len(node.tools) > n, timeout=3.0)
            if node.done:
                break
        assert node.done, f"{len(node.tools)} samples from {node.seen} board images"
        path = node.write(tmp_path / "samples.yaml")
    finally:
        ros.close()
    samples = read_handeye_samples(path)
    assert len(samples) == 12 and samples.tool_frame == "suction_cup"
    x = calibrate_handeye(samples, "eye-to-hand").best.X
    err_mm = np.linalg.norm(x[:3, 3] - T_BASE_CAM[:3, 3]) * 1e3
    cos = (np.trace(x[:3, :3].T @ T_BASE_CAM[:3, :3]) - 1) / 2
    err_deg = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    print(f"collect -> handeye: {err_mm:.2f} mm, {err_deg:.3f} deg")
    assert err_mm < 5.0 and err_deg < 0.3, (err_mm, err_deg)
