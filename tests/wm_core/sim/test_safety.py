"""Each safety-event detector fires on a constructed violation and stays quiet when clean."""

import dataclasses

import mujoco
import numpy as np
import pytest

from wm_core.sim import SceneConfig, TableClearingEnv
from wm_core.sim.safety import (
    EVENT_KINDS,
    SafetyLimits,
    SafetyMonitor,
    SafetySample,
    active_violations,
)

LIM = SafetyLimits(
    lower=-np.ones(6),
    upper=np.ones(6),
    velocity=np.ones(6),
    tool_speed=0.25,
    keepout_boxes=((np.array([1.0, -1, 0]), np.array([2.0, 1, 1])),),
)


def clean_sample(**kw) -> SafetySample:
    base = dict(
        q=np.zeros(6),
        qd=np.zeros(6),
        tool_speed=0.1,
        arm_points=np.array([[0.5, 0, 0.3]]),
        arm_radii=np.array([0.05]),
        touching_table=False,
        touching_bin=False,
    )
    base.update(kw)
    return SafetySample(**base)


@pytest.mark.parametrize(
    "kind, change",
    [
        ("arm_table_collision", dict(touching_table=True)),
        ("arm_bin_collision", dict(touching_bin=True)),
        ("joint_position_limit", dict(q=np.array([0, 0, 1.1, 0, 0, 0.0]))),
        ("joint_velocity_limit", dict(qd=np.array([0, -1.2, 0, 0, 0, 0.0]))),
        ("tool_speed", dict(tool_speed=0.3)),
        ("keepout_entry", dict(arm_points=np.array([[0.97, 0, 0.3]]))),  # radius reaches in
    ],
)
def test_each_detector_fires_alone(kind, change):
    assert active_violations(clean_sample(), LIM) == set()
    assert active_violations(clean_sample(**change), LIM) == {kind}


def test_monitor_counts_rising_edges_only():
    mon = SafetyMonitor(LIM, clear_samples=1)
    seq = [False, True, True, False, True]
    for bad in seq:
        mon.update(clean_sample(tool_speed=0.5 if bad else 0.1))
    assert mon.counts["tool_speed"] == 2 and mon.total == 2
    assert set(mon.counts) == set(EVENT_KINDS)


def test_monitor_hysteresis_merges_chatter():
    mon = SafetyMonitor(LIM, clear_samples=3)
    # chatter (gaps of 1-2 clean samples) is one event; a gap of 3 ends it
    seq = [1, 0, 1, 0, 0, 1, 0, 0, 0, 1]
    for bad in seq:
        mon.update(clean_sample(touching_table=bool(bad)))
    assert mon.counts["arm_table_collision"] == 2
    with pytest.raises(ValueError, match="clear_samples"):
        SafetyMonitor(LIM, clear_samples=0)


@pytest.fixture
def env():
    e = TableClearingEnv(SceneConfig(render_images=False, n_objects=1))
    e.reset(0)
    yield e
    e.close()


def test_clean_motion_has_no_events(env):
    for _ in range(20):
        env.step(np.array([0.5, 0.0, -0.3, -1.0]))
    assert env.monitor.total == 0


def test_sim_arm_table_collision(env):
    # Drive the shoulder down so the arm hits the table.
    q = env.q_cmd.copy()
    for _ in range(15):
        q[1] += 0.25
        env.step_joint(q, False)
    assert env.monitor.counts["arm_table_collision"] >= 1


def test_sim_arm_bin_collision():
    e = TableClearingEnv(SceneConfig(render_images=False, n_objects=1))
    e.reset(0)
    # Hover over a bin wall, then press straight down into it (the workspace clip allows it).
    from wm_core.cell import sim_cell

    b = sim_cell().bin
    cx, cy = b.center
    wall_y = cy - b.inner_half - b.wall_thickness / 2
    target = np.array([cx, wall_y, 0.2])
    for _ in range(60):
        d = (target - e.data.site("tool_site").xpos) / e.cfg.max_tool_step
        e.step(np.append(np.clip(d, -1, 1), -1.0))
    for _ in range(20):
        e.step(np.array([0.0, 0.0, -1.0, -1.0]))
    assert e.monitor.counts["arm_bin_collision"] >= 1
    e.close()


def test_sim_joint_position_and_velocity_limits(env):
    m, d = env.model, env.data
    qadr = env._qadr
    d.qpos[qadr[2]] = np.pi + 0.1  # elbow beyond its +-pi limit
    mujoco.mj_forward(m, d)
    d.qvel[env._dadr[5]] = 2 * np.pi  # wrist 3 at twice its velocity limit
    new = env.monitor.update(env._safety_sample())
    assert {"joint_position_limit", "joint_velocity_limit"} <= new


def test_sim_tool_speed():
    fast = SceneConfig(render_images=False, n_objects=1, max_tool_step=0.05)  # 0.5 m/s
    e = TableClearingEnv(fast)
    e.reset(0)
    for _ in range(8):
        e.step(np.array([1.0, 0.0, 0.0, -1.0]))
    assert e.monitor.counts["tool_speed"] >= 1
    e.close()


def test_sim_keepout_entry():
    from wm_core.cell import sim_cell

    box = (((0.3, -0.3, 0.1), (0.5, 0.3, 0.3)),)  # around the path in front of home
    e = TableClearingEnv(
        SceneConfig(render_images=False, n_objects=1),
        dataclasses.replace(sim_cell(), keepout_boxes=box),
    )
    e.reset(0)
    for _ in range(15):
        e.step(np.array([0.5, -0.6, -0.6, -1.0]))
    assert e.monitor.counts["keepout_entry"] >= 1
    e.close()
