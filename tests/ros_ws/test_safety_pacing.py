"""The safety node's first-point timing (``wm_core.safety.pacing``) against the simulator's
JTC-style follower: no ROS graph, the node's pacing rule replayed tick by tick.

The mechanism behind tool-speed events in the ROS stack: the filter bounds each step from the
last target that passed, but the controller starts a trajectory from its own reference at
receipt. A command that reaches the controller a tick late (after the tick the sender's clock
assumed) has made no progress when the next one, on time, replaces it: the controller covers
both steps in one tick."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")

from wm_bringup.msgs import Trajectory  # noqa: E402
from wm_sim.trajectory import TrajectoryFollower  # noqa: E402

from wm_core.cell import sim_cell  # noqa: E402
from wm_core.safety import FilterConfig, SafetyFilter  # noqa: E402
from wm_core.safety.pacing import FirstPointPacer  # noqa: E402

DT = 0.1
LIMIT = FilterConfig().tool_speed_limit


def _run(paced: bool, late: list[bool], direction=(0.3, 0.0, 0.0)) -> list[float]:
    """Commanded tool speed (m/s) per controller tick. Each tick the planner asks for a target
    far along ``direction``; the filter clamps it (the measured joints: the controller's
    reference, so the lead limit is at its loosest); the sender times it as the safety node
    does (after what is left of the last motion by its clock, then the pacer), and the
    controller gets it before its next tick, or after it where ``late``."""
    flt = SafetyFilter(FilterConfig(control_dt=DT), sim_cell())
    kin = flt.kin
    q0 = np.array(sim_cell().arm.home_q, float)
    flt.reset(q0)
    far = kin.ik_tool_down(kin.tool_position(q0) + np.array(direction), q0).q
    fol = TrajectoryFollower(q0, False, 0.0)
    pacer = FirstPointPacer(kin, LIMIT, DT)
    motion_end, motion_s, pending, ref = None, 0.0, None, q0.copy()
    speeds = []
    for k, is_late in enumerate(late):
        now = k * DT  # the sender's clock and the controller's agree; only delivery is late
        if pending is not None:  # the late command from the last tick arrives first
            fol.set(pending, now)
            pending = None
        res = flt.filter(far, False, ref)
        left = 0.0 if motion_end is None else min(max(motion_end - now, 0.0), motion_s)
        t1 = DT if paced else DT + left  # with a reference, the pacer alone times it
        if paced:
            pacer.reference(ref, now)
            t1 = pacer.first_time(res.q, now, t1)
        pacer.sent(res.q[None], now)
        motion_s, motion_end = t1, now + t1
        flt.resume_from(res.q, False)
        traj = Trajectory(np.array([t1]), res.q[None], None, 0.0)
        if is_late:
            pending = traj
        else:
            fol.set(traj, now)
        ref_next = fol.sample(now + DT)[0]  # the controller's reference after this tick
        step = np.linalg.norm(kin.tool_position(ref_next) - kin.tool_position(ref))
        speeds.append(float(step) / DT)
        ref = ref_next
    return speeds


LATE_THEN_ON_TIME = [False] * 6 + [True, False, False] * 5


def test_a_late_command_then_one_on_time_outruns_the_filter_without_the_pacer():
    # sideways the lead limit (2 cm over the measured tool) still lets 0.19-0.2 m/s through
    speeds = _run(False, LATE_THEN_ON_TIME, (0.0, 0.3, 0.0))
    assert max(speeds) > 1.05 * LIMIT, [round(s, 3) for s in speeds]


@pytest.mark.parametrize("direction", [(0.3, 0.0, 0.0), (0.0, 0.3, 0.0), (-0.2, 0.1, 0.05)])
def test_the_pacer_keeps_every_tick_under_the_filter_tool_speed_limit(direction):
    speeds = _run(True, LATE_THEN_ON_TIME, direction)
    assert max(speeds) <= LIMIT * (1 + 1e-6), [round(s, 3) for s in speeds]


def test_with_every_command_on_time_the_pacer_costs_no_speed():
    on_time = [False] * 15
    assert _run(True, on_time) == pytest.approx(_run(False, on_time), abs=1e-9)
    assert np.mean(_run(True, on_time)[3:]) > 0.9 * LIMIT


def test_the_pacer_changes_nothing_without_a_reference_and_forgets_a_clock_jump_back():
    kin = SafetyFilter(FilterConfig(control_dt=DT), sim_cell()).kin
    q0 = np.array(sim_cell().arm.home_q, float)
    far = kin.ik_tool_down(kin.tool_position(q0) + np.array([0.1, 0.0, 0.0]), q0).q
    pacer = FirstPointPacer(kin, LIMIT, DT)
    pacer.sent(q0[None], 100.0)
    assert pacer.first_time(far, 100.1, DT) == DT  # no reference yet: the sender's timing
    pacer.reference(far, 100.1)
    # the controller may still be at q0, 0.1 m away
    assert pacer.first_time(far, 100.1, DT) > 0.09 / LIMIT
    pacer.reference(far, 0.1)  # a respawned simulator started its clock again
    assert pacer.first_time(far, 0.1, DT) == DT  # targets sent before the jump are gone
    with pytest.raises(ValueError):
        FirstPointPacer(kin, 0.0, DT)


def test_a_burst_of_commands_is_timed_from_the_reference_alone():
    """Three commands sent at once after a stall (the controller still at its reference): each
    first point is timed so that the tool gets there from the reference at the speed limit,
    with no time added for the motions already sent. The safety node adds that time
    (``_paced``) only for a controller that publishes no reference, where it must guess; with
    one, adding it as well kept commands at up to 0.3 s in a ROS stack run (the arm lagged
    two steps behind its targets and the lead limit shortened every step)."""
    flt = SafetyFilter(FilterConfig(control_dt=DT), sim_cell())
    kin = flt.kin
    q0 = np.array(sim_cell().arm.home_q, float)
    flt.reset(q0)
    far = kin.ik_tool_down(kin.tool_position(q0) + np.array([0.3, 0.0, 0.0]), q0).q
    pacer = FirstPointPacer(kin, LIMIT, DT)
    pacer.reference(q0, 10.0)
    ref_tool = kin.tool_position(q0)
    for n in range(1, 4):
        res = flt.filter(far, False, q0)
        flt.resume_from(res.q, False)
        t1 = pacer.first_time(res.q, 10.0, DT)
        pacer.sent(res.q[None], 10.0)
        d = np.linalg.norm(kin.tool_position(res.q) - ref_tool)
        assert d / t1 <= LIMIT * (1 + 1e-6), (n, d, t1)
        assert t1 == pytest.approx(max(DT, d / LIMIT))  # no more than the distance asks
