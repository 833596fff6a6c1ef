"""The world nodes' safety-event log line (``wm_bringup.world_events``) and the follower's
account of itself: no ROS graph."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")

from wm_bringup.msgs import Trajectory  # noqa: E402
from wm_bringup.trajectory import TrajectoryFollower  # noqa: E402
from wm_bringup.world_events import WorldEventLog  # noqa: E402

from wm_core.cell import sim_cell  # noqa: E402
from wm_core.robot import ArmKinematics  # noqa: E402

Q0 = np.array(sim_cell().arm.home_q, float)


def test_the_follower_says_what_it_follows_and_since_when():
    fol = TrajectoryFollower(Q0, False, 0.5)
    assert fol.describe(1.0) == "holding (last trajectory none received)"
    fol.set(Trajectory(np.array([0.1, 0.2]), np.stack([Q0, Q0]), None, 0.0), 2.0)
    assert fol.describe(2.05) == (
        "following a trajectory received 0.05 s ago, knots at +0.05, +0.15 s"
    )
    assert fol.expired(2.71)  # 0.5 s after its last point
    assert fol.describe(2.8) == "holding (last trajectory 0.80 s ago)"


def test_an_event_is_described_with_the_measured_and_the_desired_speed():
    kin = ArmKinematics(base_pose=sim_cell().arm.T_world_base)
    log = WorldEventLog(kin, 0.1, 0.25)
    fol = TrajectoryFollower(Q0, False, 0.5)
    q1 = Q0 + np.array([0.05, 0, 0, 0, 0, 0])
    chord = float(np.linalg.norm(kin.tool_position(q1) - kin.tool_position(Q0)))
    assert log.describe({"safety_events": [], "tool_speed_peak": 0.3}, Q0, q1, fol, 1.0) is None
    line = log.describe(
        {"safety_events": ["tool_speed"], "tool_speed_peak": 0.3123}, Q0, q1, fol, 1.0
    )
    assert line.startswith("safety event tool_speed in the tick from 1.00 s: tool 0.312 m/s")
    speed = f"{chord / 0.1:.3f} m/s"
    assert f"desired motion {speed} ({speed.split()[0]} the tick before; limit 0.250)" in line
    assert line.endswith(", nothing held; the follower was holding (last trajectory none received)")
    held = {"safety_events": ["arm_table_collision"], "tool_speed_peak": 0.1, "held": [0, 1]}
    line = log.describe(held, Q0, Q0, fol, 2.0)  # standing still after a tick at `chord`
    assert ", an object held;" in line
    assert f"desired motion 0.000 m/s ({chord / 0.1:.3f} the tick before;" in line
    assert log.count == 2
    with pytest.raises(ValueError):
        WorldEventLog(kin, 0.0, 0.25)


def test_the_mujoco_world_reports_its_peak_tool_speed_per_step():
    from wm_core.sim import SceneConfig, TableClearingEnv

    env = TableClearingEnv(SceneConfig(n_objects=1, render_images=False))
    try:
        _, info = env.reset(3)
        assert info["tool_speed_peak"] == 0.0
        q = env.q_cmd.copy()
        q[0] += 0.02  # about 1 cm at the tool in 0.1 s
        *_, info = env.step_joint(q, False)
        chord = np.linalg.norm(env.kin.tool_position(q) - env.kin.tool_position(Q0))
        assert 0.2 * chord / 0.1 < info["tool_speed_peak"] < 5 * chord / 0.1
    finally:
        env.close()


def test_the_mujoco_world_says_what_a_held_object_touched():
    """In the tick after the grip, the held object still stands on the table (the lift
    starts): the tick's info says so, and the event line would name it."""
    from wm_core.eval.policies import OraclePolicy
    from wm_core.sim import SceneConfig, TableClearingEnv

    scene = SceneConfig(n_objects=1, render_images=False)
    env = TableClearingEnv(scene)
    try:
        obs, info = env.reset(5)
        policy = OraclePolicy(scene, env.cell)
        policy.reset(5)
        assert info["held_contacts"] == []
        for _ in range(200):
            obs, _, done, _, info = env.step(policy.act(obs, info))
            if info["held"].any() or done:
                break
        assert info["held"].any(), "the oracle never gripped"
        obs, _, _, _, info = env.step(policy.act(obs, info))
        assert info["held"].any() and "table" in info["held_contacts"], info["held_contacts"]
        kin = ArmKinematics(base_pose=env.cell.arm.T_world_base)
        line = WorldEventLog(kin, 0.1, 0.25).describe(
            {**info, "safety_events": ["tool_speed"]}, Q0, Q0, TrajectoryFollower(Q0), 1.0
        )
        assert "an object held (touching " in line and "table" in line
        lifted = []
        for _ in range(30):  # lifted clear of the table, it touches nothing
            obs, _, done, _, info = env.step(policy.act(obs, info))
            lifted.append(tuple(info["held_contacts"]))
            if done:
                break
        assert () in lifted
    finally:
        env.close()
