"""wm_safety: the hard filter as a node (limits, keep-out, watchdog, latched e-stop)."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

DOMAIN = 110  # this module uses 110..119

rclpy = pytest.importorskip("rclpy")

from rcl_interfaces.msg import ParameterType  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool, Header  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402
from wm_bringup.msgs import (  # noqa: E402
    REFERENCE_TOPIC,
    SUCTION_JOINT,
    arm_joint_names,
    make_trajectory,
    to_seconds,
)
from wm_bringup.nodekit import RELIABLE_QOS, StartupError  # noqa: E402
from wm_safety.safety_node import SafetyNode  # noqa: E402

from wm_core.cell import SIM_CELL_FILE, sim_cell  # noqa: E402
from wm_core.robot import ArmKinematics  # noqa: E402
from wm_core.safety import FilterConfig, SafetyFilter  # noqa: E402

NAMES = arm_joint_names()
HOME = np.array(sim_cell().arm.home_q)
STALE = 0.4
SMALL = HOME + np.array([0, 0, 0, 0, 0, 0.05])  # wrist_3 turns the cup about its axis


@pytest.fixture
def ros():
    from ros_harness import Ros, fresh_domain

    r = Ros(fresh_domain(DOMAIN))
    yield r
    r.close()


class Arm:
    """A fake arm: publishes joint states at 50 Hz from the probe node."""

    def __init__(self, ros, q=HOME):
        self.q = np.array(q, float)
        self.on = True
        self.pub = ros.publisher(JointState, "/joint_states", RELIABLE_QOS)
        ros.probe.create_timer(0.02, self.publish)

    def publish(self):
        if self.on:
            self.pub.publish(
                JointState(name=[*NAMES, SUCTION_JOINT], position=[*map(float, self.q), 0.0])
            )


def start_safety(ros, *params: str) -> SafetyNode:
    args = ["--ros-args", "-p", f"stale_after_s:={STALE}", *[a for p in params for a in ("-p", p)]]
    node = ros.add(SafetyNode(context=ros.context, cli_args=args))
    node.autostart()
    return node


def command(q, stamp=None, names=NAMES) -> JointTrajectory:
    msg = make_trajectory(names, np.asarray(q, float)[None], [0.1], [False])
    if stamp is not None:
        msg.header.stamp = stamp
    return msg


def test_commands_pass_clamped_with_reliable_qos_and_zero_stamp(ros):
    node = start_safety(ros)
    arm = Arm(ros)
    out = ros.collect(JointTrajectory, "/arm_controller/joint_trajectory", RELIABLE_QOS)
    cmd = ros.publisher(JointTrajectory, "/wm/plan_cmd", RELIABLE_QOS)
    assert ros.spin_until(lambda: node.q is not None and ros.linked())
    info = ros.probe.get_publishers_info_by_topic("/arm_controller/joint_trajectory")
    assert [i.node_name for i in info] == ["wm_safety"]
    assert info[0].qos_profile.reliability.name == "RELIABLE"

    small = SMALL
    cmd.publish(command(small, ros.probe.get_clock().now().to_msg()))
    assert ros.spin_until(lambda: len(out) >= 1)
    msg = out[-1]
    assert list(msg.joint_names) == [*NAMES, SUCTION_JOINT]
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (0, 0)  # start on receipt
    np.testing.assert_allclose(msg.points[0].positions[:6], small, atol=1e-9)
    assert to_seconds(msg.points[0].time_from_start) == pytest.approx(0.1)

    far = HOME.copy()
    far[5] += 2.0  # far beyond one step of the velocity limit
    out.clear()
    cmd.publish(command(far, ros.probe.get_clock().now().to_msg()))
    assert ros.spin_until(lambda: len(out) >= 1)
    step = np.array(out[-1].points[0].positions[:6]) - small
    assert np.all(np.abs(step) <= node.filter.max_step + 1e-9)
    assert 0 < step[5] < 2.0
    assert arm.q is not None


def test_the_first_point_waits_for_a_controller_whose_reference_lags(ros):
    """The controller starts a trajectory from its reference, not from the last target: the
    first point is timed so the tool gets there from the reference at the filter's tool speed
    limit (a reference 3 cm behind the arm: 0.03 / 0.175 = 0.17 s, not one period)."""
    node = start_safety(ros)
    Arm(ros)
    out = ros.collect(JointTrajectory, "/arm_controller/joint_trajectory", RELIABLE_QOS)
    cmd = ros.publisher(JointTrajectory, "/wm/plan_cmd", RELIABLE_QOS)
    ref = ros.publisher(JointState, REFERENCE_TOPIC, RELIABLE_QOS)
    assert ros.spin_until(lambda: node.q is not None and ros.linked())
    kin = ArmKinematics(base_pose=sim_cell().arm.T_world_base)
    behind = kin.ik_tool_down(kin.tool_position(HOME) - np.array([0.03, 0.0, 0.0]), HOME)
    assert behind.converged
    msg = JointState(name=list(NAMES), position=[float(x) for x in behind.q])
    msg.header.stamp = ros.probe.get_clock().now().to_msg()
    ref.publish(msg)
    assert ros.spin_until(lambda: node.pacer.ref_tool is not None)
    cmd.publish(command(SMALL, ros.probe.get_clock().now().to_msg()))
    assert ros.spin_until(lambda: len(out) >= 1)
    np.testing.assert_allclose(out[-1].points[0].positions[:6], SMALL, atol=1e-9)
    d = np.linalg.norm(kin.tool_position(SMALL) - kin.tool_position(behind.q))
    t1 = to_seconds(out[-1].points[0].time_from_start)
    assert t1 == pytest.approx(d / node.config.filter.tool_speed_limit, rel=1e-6)
    assert t1 > 0.15


def test_each_planner_command_reports_its_source_stamp_beside_the_arm_command(ros):
    node = start_safety(ros)
    Arm(ros)
    out = ros.collect(JointTrajectory, "/arm_controller/joint_trajectory", RELIABLE_QOS)
    sources = ros.collect(Header, "/wm/safety/command_source", RELIABLE_QOS)
    verdicts = ros.collect(Header, "/wm/safety/verdict", RELIABLE_QOS)
    cmd = ros.publisher(JointTrajectory, "/wm/plan_cmd", RELIABLE_QOS)
    assert ros.spin_until(lambda: node.q is not None and ros.linked())
    stamps = []
    for k in range(3):
        stamps.append(ros.probe.get_clock().now().to_msg())
        cmd.publish(command(SMALL if k % 2 else HOME, stamps[-1]))
        assert ros.spin_until(lambda n=k + 1: len(sources) >= n and len(verdicts) >= n)
    assert [(h.stamp.sec, h.stamp.nanosec) for h in sources] == [(t.sec, t.nanosec) for t in stamps]
    # the filter's verdict on each of those commands, under the same stamp
    assert [(h.stamp.sec, h.stamp.nanosec) for h in verdicts] == [
        (t.sec, t.nanosec) for t in stamps
    ]
    assert {h.frame_id for h in verdicts} <= {"ok", "clamped"}
    assert all((m.header.stamp.sec, m.header.stamp.nanosec) == (0, 0) for m in out)
    n_src = len(sources)
    assert ros.spin_until(lambda: node.holding == "commands stale", timeout=3.0)  # the watchdog
    assert ros.spin_until(lambda: len(out) == node.stats["sent"])  # its hold is in
    ros.spin_for(0.2)
    assert len(sources) == n_src  # it answers no frame


def cell_file(tmp_path, **changes) -> str:
    """The sim cell with ``changes``, written as a cell file; -> its path."""
    import yaml

    data = yaml.safe_load(SIM_CELL_FILE.read_text()) | changes
    path = tmp_path / "cell.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_keepout_intrusion_is_held(ros, tmp_path):
    kin = ArmKinematics()
    q2 = HOME.copy()
    q2[0] += 0.03  # a small pan: the tool moves about 1.5 cm, under the speed limit
    tip, tip0 = kin.tool_position(q2), kin.tool_position(HOME)
    ahead = tip + 1.5 * (tip - tip0)  # a 1 cm box just ahead of the commanded tool position
    box = ((*(ahead - 0.005),), (*(ahead + 0.005),))
    flt = SafetyFilter(FilterConfig(), dataclasses.replace(sim_cell(), keepout_boxes=(box,)))
    assert flt.violation(HOME) == 0 and flt.violation(q2) > 0
    path = cell_file(tmp_path, keepout_boxes=[[list(map(float, c)) for c in box]])
    node = start_safety(
        ros,
        f"cell_file:={path}",
        "tool_accel_limit:=100.0",  # one step from rest straight into the box
    )
    assert node.config.cell.keepout_boxes == (box,)
    Arm(ros)
    out = ros.collect(JointTrajectory, "/arm_controller/joint_trajectory", RELIABLE_QOS)
    verdicts = ros.collect(Header, "/wm/safety/verdict", RELIABLE_QOS)
    cmd = ros.publisher(JointTrajectory, "/wm/plan_cmd", RELIABLE_QOS)
    assert ros.spin_until(lambda: node.q is not None and ros.linked())
    cmd.publish(command(q2, ros.probe.get_clock().now().to_msg()))
    assert ros.spin_until(lambda: len(out) >= 1 and len(verdicts) >= 1)
    np.testing.assert_allclose(out[-1].points[0].positions[:6], HOME, atol=1e-9)  # held
    assert node.filter.counts["rejected"] == 1
    assert [h.frame_id for h in verdicts] == ["rejected"]


def test_watchdog_holds_when_commands_or_joint_states_stop(ros):
    node = start_safety(ros)
    arm = Arm(ros)
    out = ros.collect(JointTrajectory, "/arm_controller/joint_trajectory", RELIABLE_QOS)
    cmd = ros.publisher(JointTrajectory, "/wm/plan_cmd", RELIABLE_QOS)
    assert ros.spin_until(lambda: node.q is not None and ros.linked())
    q = HOME.copy()
    for _ in range(8):  # a planner at 10 Hz, the arm following a little behind
        q[1] += 0.02
        cmd.publish(command(q, ros.probe.get_clock().now().to_msg()))
        arm.q = q - [0, 0.015, 0, 0, 0, 0]  # still settling (a held object's sag, its lag)
        ros.spin_for(0.1)
    # a fresh command clears any hold (a stall of this test process longer than STALE between
    # two commands is, to the node, commands stopping, and it rightly holds)
    cmd.publish(command(q, ros.probe.get_clock().now().to_msg()))
    assert ros.spin_until(lambda: node.holding is None)
    assert ros.spin_until(lambda: node.holding is not None, timeout=3.0)
    assert ros.spin_until(lambda: len(out) == node.stats["sent"])  # the hold is in
    # how long after the last command the node sent its hold, on the node's clock (this
    # test's own polling is not the watchdog's delay)
    gate = node.gate  # its times are seconds on the node's clock
    waited = gate.motion_end - gate.motion_s - gate.cmd_time
    assert STALE <= waited < STALE + 0.3, f"hold after {waited:.2f} s"
    # the hold keeps the last point sent, where the controller is headed (the measured joints
    # are older: a hold there would pull the settling arm back)
    hold, last_sent = (np.array(m.points[-1].positions[:6]) for m in (out[-1], out[-2]))
    assert np.abs(last_sent - arm.q).max() > 0.01  # the arm had not arrived
    np.testing.assert_allclose(hold, last_sent, atol=1e-9)
    assert "commands" in node.holding
    assert node.filter.counts["hold_stale"] >= 1

    # commands resume, then the joint states stop: hold at the last safe command
    cmd.publish(command(q, ros.probe.get_clock().now().to_msg()))
    assert ros.spin_until(lambda: node.holding is None)
    arm.on = False
    end = time.monotonic() + 1.0
    while time.monotonic() < end:  # keep commanding: only the joint states are stale
        cmd.publish(command(q, ros.probe.get_clock().now().to_msg()))
        ros.spin_for(0.05)
    assert node.holding is not None and "joint states" in node.holding


def test_stale_command_stamp_is_held(ros):
    node = start_safety(ros)
    Arm(ros)
    out = ros.collect(JointTrajectory, "/arm_controller/joint_trajectory", RELIABLE_QOS)
    cmd = ros.publisher(JointTrajectory, "/wm/plan_cmd", RELIABLE_QOS)
    assert ros.spin_until(lambda: node.q is not None and ros.linked())
    old = (ros.probe.get_clock().now() - rclpy.duration.Duration(seconds=2.0)).to_msg()
    cmd.publish(command(SMALL, old))
    assert ros.spin_until(lambda: node.filter.counts["hold_stale"] >= 1)
    assert ros.spin_until(lambda: len(out) >= 1)
    np.testing.assert_allclose(out[-1].points[0].positions[:6], HOME, atol=1e-9)


def test_estop_latches_until_released_by_parameter(ros):
    node = start_safety(ros)
    Arm(ros)
    out = ros.collect(JointTrajectory, "/arm_controller/joint_trajectory", RELIABLE_QOS)
    cmd = ros.publisher(JointTrajectory, "/wm/plan_cmd", RELIABLE_QOS)
    estop = ros.publisher(Bool, "/wm/estop", RELIABLE_QOS)
    assert ros.spin_until(lambda: node.q is not None and ros.linked())
    estop.publish(Bool(data=True))
    assert ros.spin_until(lambda: node.filter.estopped is not None)
    estop.publish(Bool(data=False))  # does not release
    ros.spin_for(0.2)
    out.clear()
    cmd.publish(command(SMALL, ros.probe.get_clock().now().to_msg()))
    assert ros.spin_until(lambda: len(out) >= 1)
    np.testing.assert_allclose(out[-1].points[0].positions[:6], HOME, atol=1e-9)
    assert node.filter.estopped is not None

    res = node.set_parameters([Parameter("release_estop", value=True)])
    assert res[0].successful
    assert node.filter.estopped is None
    assert ros.spin_until(lambda: node.get_parameter("release_estop").value is False)
    out.clear()
    cmd.publish(command(SMALL, ros.probe.get_clock().now().to_msg()))
    assert ros.spin_until(lambda: len(out) >= 1)
    np.testing.assert_allclose(out[-1].points[0].positions[:6], SMALL, atol=1e-9)


def test_malformed_commands_hold_and_the_node_keeps_running(ros):
    node = start_safety(ros)
    Arm(ros)
    out = ros.collect(JointTrajectory, "/arm_controller/joint_trajectory", RELIABLE_QOS)
    cmd = ros.publisher(JointTrajectory, "/wm/plan_cmd", RELIABLE_QOS)
    assert ros.spin_until(lambda: node.q is not None and ros.linked())
    cmd.publish(command(HOME[:5], names=NAMES[:5]))  # a missing joint
    bad = command(HOME)
    bad.points[0].positions[2] = float("nan")
    cmd.publish(bad)
    assert ros.spin_until(lambda: node.stats["malformed"] == 2)
    cmd.publish(command(SMALL, ros.probe.get_clock().now().to_msg()))
    assert ros.spin_until(lambda: node.holding is None)
    assert ros.spin_until(lambda: np.allclose(out[-1].points[0].positions[:6], SMALL))


def test_bad_parameters_refuse_start_or_are_rejected(ros, tmp_path):
    with pytest.raises(StartupError, match="stale_after_s"):
        SafetyNode(context=ros.context, cli_args=["--ros-args", "-p", "stale_after_s:=-1.0"])
    bad = cell_file(tmp_path, keepout_boxes=[[[1.0, 1.0, 1.0], [0.0, 2.0, 2.0]]])
    with pytest.raises(StartupError, match="keepout_boxes"):
        SafetyNode(context=ros.context, cli_args=["--ros-args", "-p", f"cell_file:={bad}"])
    with pytest.raises(StartupError, match="cannot read cell file"):
        SafetyNode(context=ros.context, cli_args=["--ros-args", "-p", "cell_file:=/no/such.yaml"])
    with pytest.raises(StartupError, match="joint_names"):
        SafetyNode(context=ros.context, cli_args=["--ros-args", "-p", "joint_names:=[a, b]"])
    node = start_safety(ros)
    assert node.config.cell == sim_cell() and len(node.filter.boxes) == 5  # keep-out + 4 walls
    res = node.set_parameters([Parameter("control_hz", value=0.0)])
    assert not res[0].successful  # outside the descriptor's range
    res = node.set_parameters([Parameter("cell_file", value=bad)])
    assert not res[0].successful and "keepout_boxes" in res[0].reason
    assert node.names == NAMES and node.config.shadow is False
    for read_only in ("shadow", "joint_names"):
        assert node.describe_parameter(read_only).read_only
    desc = node.describe_parameter("stale_after_s")
    assert desc.type == ParameterType.PARAMETER_DOUBLE and desc.floating_point_range
    node.stop()
    assert node.state_label == "unconfigured" and node.filter is None


@pytest.fixture(params=["message_gid", "graph"])
def gid_source(request, monkeypatch):
    """How the node tells the /joint_states publisher: the gid in each message's info (this
    rclpy), or, as with Jazzy's rclpy (no gid per message), from the ROS graph."""
    if request.param == "graph":
        import wm_safety.safety_node as safety_node

        monkeypatch.setattr(safety_node, "publisher_of", lambda info: None)
    return request.param


def test_a_restarted_arm_driver_resyncs_the_latched_hold_where_the_arm_is(ros, gid_source):
    """After its driver restarts (joint states from a new publisher), the arm is a little
    elsewhere (below the re-sync tolerance): the latched e-stop's holds follow it there instead
    of moving it back to the last safe command of before the restart."""
    node = start_safety(ros)
    arm = Arm(ros)
    out = ros.collect(JointTrajectory, "/arm_controller/joint_trajectory", RELIABLE_QOS)
    cmd = ros.publisher(JointTrajectory, "/wm/plan_cmd", RELIABLE_QOS)
    estop = ros.publisher(Bool, "/wm/estop", RELIABLE_QOS)
    assert ros.spin_until(lambda: node.q is not None and ros.linked())
    cmd.publish(command(SMALL, ros.probe.get_clock().now().to_msg()))
    assert ros.spin_until(lambda: len(out) >= 1)
    estop.publish(Bool(data=True))
    assert ros.spin_until(lambda: node.filter.estopped is not None)

    moved = HOME + np.array([0.03, 0, 0, 0, 0, 0])  # where the restarted driver holds the arm
    arm.on = False
    ros.spin_for(STALE + 0.2)  # the driver is down a while
    Arm(ros, moved)  # the driver's new publisher
    assert ros.spin_until(lambda: np.allclose(node.q, moved))
    assert ros.spin_until(lambda: node.stats["joint_state_sources"] == 1)
    out.clear()
    for _ in range(3):
        cmd.publish(command(SMALL, ros.probe.get_clock().now().to_msg()))
        ros.spin_for(0.1)
    assert ros.spin_until(lambda: len(out) >= 3)
    for msg in out:  # every hold while latched stays where the arm now is
        np.testing.assert_allclose(msg.points[0].positions[:6], moved, atol=1e-9)
    assert node.filter.estopped is not None
    assert node.stats["joint_state_sources"] == 1  # one change, one re-sync


def test_a_restarted_simulator_is_told_in_wall_time_not_by_its_stopped_clock(ros, gid_source):
    """The node on a simulator's clock. The simulator dies (its clock and joint states stop
    together) and its respawn's first joint states arrive before its clock: by the stopped
    clock the old publisher was silent 0 s, by the wall for longer than ``stale_after_s``. A
    restart, re-synced where the new arm is (wm chaos: read as two live publishers instead)."""
    from rclpy.time import Time
    from rosgraph_msgs.msg import Clock

    sim = {"t": 100.0, "on": True}
    pub_clock = ros.publisher(Clock, "/clock", RELIABLE_QOS)

    def tick():
        if sim["on"]:
            sim["t"] += 0.01
            pub_clock.publish(Clock(clock=Time(seconds=sim["t"]).to_msg()))

    ros.probe.create_timer(0.01, tick)
    node = start_safety(ros, "use_sim_time:=true")
    arm = Arm(ros)
    estop = ros.publisher(Bool, "/wm/estop", RELIABLE_QOS)
    assert ros.spin_until(lambda: node.q is not None and ros.linked())
    ros.spin_for(0.3)
    estop.publish(Bool(data=True))
    assert ros.spin_until(lambda: node.filter.estopped is not None)
    sim["on"], arm.on = False, False  # the simulator is killed
    ros.spin_for(STALE + 0.3)
    moved = HOME + np.array([0.03, 0, 0, 0, 0, 0])
    Arm(ros, moved)  # its respawn: joint states first, the clock still stopped
    assert ros.spin_until(lambda: node.stats["joint_state_sources"] == 1, timeout=3.0)
    sim["t"], sim["on"] = 0.0, True  # then its clock, from 0
    ros.spin_for(0.3)
    assert node.stats["joint_state_sources"] == 1
    assert node.stats["joint_state_clashes"] == 0
    np.testing.assert_allclose(node.filter.last_q, moved, atol=1e-9)  # latched where it is


def test_a_stalled_driver_that_resumes_is_not_a_restart(ros, gid_source):
    """The same publisher silent for longer than ``stale_after_s``, then back: no re-sync
    (its latched hold keeps its target), in either way of telling publishers apart."""
    node = start_safety(ros)
    arm = Arm(ros)
    estop = ros.publisher(Bool, "/wm/estop", RELIABLE_QOS)
    assert ros.spin_until(lambda: node.q is not None and ros.linked())
    ros.spin_for(0.3)  # the node has seen the publisher while the states flowed
    estop.publish(Bool(data=True))
    assert ros.spin_until(lambda: node.filter.estopped is not None)
    arm.on = False
    ros.spin_for(STALE + 0.2)
    arm.q = HOME + np.array([0.03, 0, 0, 0, 0, 0])
    arm.on = True
    assert ros.spin_until(lambda: np.allclose(node.q, arm.q))
    ros.spin_for(STALE + 0.2)  # past the graph's window
    assert node.stats["joint_state_sources"] == 0


def test_latched_holds_keep_their_target_while_the_arm_comes_to_rest(ros):
    """While the e-stop is latched, every hold answers at the target it latched; re-aiming it
    at the measured joints of an arm still coming to rest would move the arm while latched."""
    node = start_safety(ros)
    arm = Arm(ros)
    out = ros.collect(JointTrajectory, "/arm_controller/joint_trajectory", RELIABLE_QOS)
    cmd = ros.publisher(JointTrajectory, "/wm/plan_cmd", RELIABLE_QOS)
    estop = ros.publisher(Bool, "/wm/estop", RELIABLE_QOS)
    assert ros.spin_until(lambda: node.q is not None and ros.linked())
    estop.publish(Bool(data=True))
    assert ros.spin_until(lambda: node.filter.estopped is not None)
    arm.q = HOME + np.array([0, 0, 0, 0, 0, 0.01])  # still coming to rest after the stop
    assert ros.spin_until(lambda: np.allclose(node.q, arm.q))
    out.clear()
    for _ in range(3):
        cmd.publish(command(SMALL, ros.probe.get_clock().now().to_msg()))
        ros.spin_for(0.1)
    cmd.publish(command(SMALL, stamp=None, names=["a"] * 6))  # malformed: a hold too
    assert ros.spin_until(lambda: len(out) >= 4)
    for msg in out:
        np.testing.assert_allclose(msg.points[0].positions[:6], HOME, atol=1e-9)


def test_no_hold_reaches_a_restarted_arm_before_its_first_joint_state(ros):
    """The arm's driver dies (joint states stop): one hold, then no answer while they stay
    stale; when it is back elsewhere, the first output is the re-sync hold where it stands."""
    node = start_safety(ros)
    arm = Arm(ros)
    out = ros.collect(JointTrajectory, "/arm_controller/joint_trajectory", RELIABLE_QOS)
    cmd = ros.publisher(JointTrajectory, "/wm/plan_cmd", RELIABLE_QOS)
    assert ros.spin_until(lambda: node.q is not None and ros.linked())
    cmd.publish(command(SMALL, ros.probe.get_clock().now().to_msg()))
    assert ros.spin_until(lambda: len(out) >= 1)
    arm.on = False  # the driver dies
    assert ros.spin_until(lambda: node.holding is not None and "stale" in node.holding)
    ros.spin_for(STALE + 0.2)  # the joint states are stale too now
    out.clear()
    for _ in range(4):  # the planner goes on
        cmd.publish(command(SMALL, ros.probe.get_clock().now().to_msg()))
        ros.spin_for(0.1)
    assert ros.spin_until(lambda: node.stats["holds_unsent"] >= 4)
    assert out == []
    estop = ros.publisher(Bool, "/wm/estop", RELIABLE_QOS)
    estop.publish(Bool(data=True))  # latched while the joint states are stale
    cmd.publish(command(SMALL, names=["a"] * 6))  # malformed
    empty = command(SMALL, ros.probe.get_clock().now().to_msg())
    empty.points = []  # "stop"
    cmd.publish(empty)
    assert ros.spin_until(lambda: node.filter.estopped is not None)
    assert ros.spin_until(lambda: node.stats["holds_unsent"] >= 7)
    assert out == []  # none of those holds went out either
    moved = HOME + np.array([0.03, 0, 0, 0, 0, 0])
    Arm(ros, moved)  # the restarted driver
    assert ros.spin_until(lambda: len(out) >= 1)
    np.testing.assert_allclose(out[0].points[0].positions[:6], moved, atol=1e-9)
    assert node.stats["joint_state_sources"] == 1


def test_an_estop_before_any_joint_state_latches_without_a_crash(ros):
    node = start_safety(ros)
    out = ros.collect(JointTrajectory, "/arm_controller/joint_trajectory", RELIABLE_QOS)
    estop = ros.publisher(Bool, "/wm/estop", RELIABLE_QOS)
    assert ros.spin_until(lambda: ros.linked())
    estop.publish(Bool(data=True))
    assert ros.spin_until(lambda: node.filter.estopped is not None)
    ros.spin_for(0.3)
    assert out == []  # nothing measured, nothing to hold at
    Arm(ros)
    cmd = ros.publisher(JointTrajectory, "/wm/plan_cmd", RELIABLE_QOS)
    assert ros.spin_until(lambda: node.q is not None and ros.linked())
    cmd.publish(command(SMALL, ros.probe.get_clock().now().to_msg()))
    assert ros.spin_until(lambda: len(out) >= 1)
    np.testing.assert_allclose(out[-1].points[0].positions[:6], HOME, atol=1e-9)  # held
    assert node.filter.estopped is not None


def test_two_live_joint_state_publishers_are_reported_not_resynced(ros):
    """A driver plus a second joint-state publisher (both alive) is a misconfiguration to
    report; re-syncing on each alternation would hold the arm and re-aim latched holds."""
    node = start_safety(ros)
    Arm(ros)
    Arm(ros, HOME + np.array([0, 0, 0, 0, 0, 0.001]))
    assert ros.spin_until(lambda: node.stats["joint_state_clashes"] >= 20)
    assert node.stats["joint_state_sources"] == 0
