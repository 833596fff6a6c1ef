"""wm_sim: clock, camera, joint states, JTC-style trajectory execution, episode control."""

from __future__ import annotations

import json

import numpy as np
import pytest

DOMAIN = 140  # this module uses 140..149

rclpy = pytest.importorskip("rclpy")

from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState  # noqa: E402
from std_msgs.msg import Empty, Int64, String  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402
from wm_bringup.msgs import (  # noqa: E402
    REFERENCE_TOPIC,
    SUCTION_JOINT,
    Trajectory,
    arm_joint_names,
    make_trajectory,
    to_seconds,
)
from wm_bringup.nodekit import RELIABLE_QOS, SENSOR_QOS, StartupError  # noqa: E402
from wm_sim.sim_node import SimNode  # noqa: E402
from wm_sim.trajectory import TrajectoryFollower  # noqa: E402

from wm_core.cell import sim_cell  # noqa: E402

NAMES = arm_joint_names()
HOME = np.array(sim_cell().arm.home_q)


@pytest.fixture
def ros():
    from ros_harness import Ros, fresh_domain

    r = Ros(fresh_domain(DOMAIN))
    yield r
    r.close()


def start(ros, *params: str) -> SimNode:
    args = [
        "--ros-args",
        "-p",
        "n_objects:=1",
        "-p",
        "image_size:=64",
        "-p",
        "real_time_factor:=4.0",
    ]
    args += [a for p in params for a in ("-p", p)]
    node = ros.add(SimNode(context=ros.context, cli_args=args))
    node.autostart()
    return node


def test_follower_interpolates_and_holds_like_a_jtc():
    f = TrajectoryFollower(np.zeros(6))
    traj = Trajectory(np.array([1.0, 2.0]), np.array([np.ones(6), 3 * np.ones(6)]), None, 0.0)
    f.set(traj, now_s=10.0)
    np.testing.assert_allclose(f.sample(10.5)[0], 0.5)
    np.testing.assert_allclose(f.sample(11.5)[0], 2.0)
    np.testing.assert_allclose(f.sample(99.0)[0], 3.0)  # holds the last point
    f.set(Trajectory(np.zeros(0), np.zeros((0, 6)), None, 0.0), now_s=11.5)  # empty: stop
    np.testing.assert_allclose(f.sample(20.0)[0], 2.0)


def test_a_suction_command_changes_the_suction_not_the_motion():
    """The real profile sends each trajectory, then the suction on its own topic: the suction
    message must not stop the trajectory just received (it did: the arm never moved)."""
    f = TrajectoryFollower(np.zeros(6))
    f.set(Trajectory(np.array([1.0]), np.ones((1, 6)), None, 0.0), now_s=10.0)
    f.set_suction(True, now_s=10.0)
    q, on = f.sample(10.5)
    np.testing.assert_allclose(q, 0.5)  # still on its way
    assert on
    np.testing.assert_allclose(f.sample(12.0)[0], 1.0)
    assert f.sample(12.0)[1]
    f.set_suction(False, now_s=12.0)  # while holding the last point
    assert not f.sample(13.0)[1]
    np.testing.assert_allclose(f.sample(13.0)[0], 1.0)


def test_follower_stops_on_cmd_timeout_like_a_jtc():
    """cmd_timeout counts from the end of the last trajectory: it expires once, then the
    caller holds where the arm is; a hold itself never expires; 0 switches it off."""
    f = TrajectoryFollower(np.zeros(6), cmd_timeout_s=0.5)
    assert not f.expired(100.0)  # holding since start: nothing to time out
    f.set(Trajectory(np.array([0.1]), np.ones((1, 6)), None, 0.0), now_s=10.0)
    assert not f.expired(10.5) and not f.expired(10.6)  # ends at 10.1: stale after 10.6
    assert f.expired(10.61) and not f.expired(10.7)  # once
    f.hold(np.full(6, 0.9), False)  # the measured arm
    np.testing.assert_allclose(f.sample(11.0)[0], 0.9)
    assert not f.expired(50.0)
    f.set(Trajectory(np.array([0.1]), np.ones((1, 6)), None, 0.0), now_s=60.0)
    assert not f.expired(60.55)  # a new command restarts the clock
    off = TrajectoryFollower(np.zeros(6))
    off.set(Trajectory(np.array([0.1]), np.ones((1, 6)), None, 0.0), now_s=0.0)
    assert not off.expired(1e6)
    with pytest.raises(ValueError, match="cmd_timeout_s"):
        TrajectoryFollower(np.zeros(6), cmd_timeout_s=-1.0)


def test_topics_types_stamps_and_qos(ros):
    node = start(ros)
    clock = ros.collect(Clock, "/clock", RELIABLE_QOS)
    js = ros.collect(JointState, "/joint_states", RELIABLE_QOS)
    img = ros.collect(Image, "/camera/image_raw", SENSOR_QOS)
    info = ros.collect(CameraInfo, "/camera/camera_info", SENSOR_QOS)
    assert ros.spin_until(lambda: len(js) >= 3 and img and info and len(clock) >= 3)
    qos = ros.probe.get_publishers_info_by_topic("/camera/image_raw")[0].qos_profile
    assert qos.reliability.name == "BEST_EFFORT"
    qos = ros.probe.get_publishers_info_by_topic("/joint_states")[0].qos_profile
    assert qos.reliability.name == "RELIABLE"
    t = [to_seconds(c.clock) for c in clock[:3]]
    np.testing.assert_allclose(np.diff(t), 0.1, atol=1e-9)  # one agent step per tick
    m = js[-1]
    assert list(m.name) == [*NAMES, SUCTION_JOINT] and m.position[6] == 0.0
    np.testing.assert_allclose(m.position[:6], HOME, atol=0.02)
    im = img[-1]
    assert (im.encoding, im.height, im.width, im.step) == ("rgb8", 64, 64, 192)
    assert len(im.data) == 64 * 192
    # stamped on the simulator's clock: a tick's /clock can arrive after its image (two
    # subscriptions, one executor), so wait for that tick; a wall-time stamp never comes
    stamp = to_seconds(im.header.stamp)
    assert ros.spin_until(lambda: stamp in [to_seconds(c.clock) for c in clock], timeout=3.0)
    ci = info[-1]
    assert ci.k[2] == pytest.approx(32.0) and ci.k[8] == 1.0 and ci.width == 64
    assert node.active


def test_executes_trajectories_by_joint_name_with_the_suction_joint(ros):
    node = start(ros)
    js = ros.collect(JointState, "/joint_states", RELIABLE_QOS)
    ref = ros.collect(JointState, REFERENCE_TOPIC, RELIABLE_QOS)
    pub = ros.publisher(JointTrajectory, "/arm_controller/joint_trajectory", RELIABLE_QOS)
    assert ros.spin_until(lambda: len(js) >= 2 and ros.linked())
    goal = HOME.copy()
    goal[5] += 0.3  # wrist_3
    order = [5, 4, 3, 2, 1, 0]  # joint names in another order than the URDF's
    msg = make_trajectory([NAMES[i] for i in order], goal[order][None], [0.5], [True])
    pub.publish(msg)
    assert ros.spin_until(lambda: abs(js[-1].position[5] - goal[5]) < 0.02, timeout=10.0)
    assert js[-1].position[6] == 1.0  # suction on
    np.testing.assert_allclose(js[-1].position[:5], HOME[:5], atol=0.02)
    # the follower's reference (what the safety node times its commands from): on the goal
    # exactly once the trajectory ended, in URDF order, stamped with the simulated time (a
    # tick's reference may arrive after its joint state: no order across topics, so wait)
    assert ros.spin_until(lambda: np.allclose(ref[-1].position, goal, rtol=0.0, atol=1e-12))
    assert list(ref[-1].name) == list(NAMES)
    assert to_seconds(ref[-1].header.stamp) > to_seconds(ref[0].header.stamp)

    bad = make_trajectory(NAMES[:5], HOME[None, :5], [0.5], None)  # a joint missing
    pub.publish(bad)
    assert ros.spin_until(lambda: node.rejected == 1)
    n = len(js)
    assert ros.spin_until(lambda: len(js) > n + 2)  # still running
    assert abs(js[-1].position[5] - goal[5]) < 0.02


def test_reset_and_episode_metrics(ros):
    node = start(ros, "metrics_period_s:=0.5")
    episodes = ros.collect(String, "/wm/sim/episode", RELIABLE_QOS)
    reset = ros.publisher(Int64, "/wm/sim/reset", RELIABLE_QOS)
    assert ros.spin_until(lambda: bool(episodes))
    m = json.loads(episodes[-1].data)
    assert {"objects", "cleared", "dropped", "safety", "seed", "done"} <= set(m)
    assert m["seed"] == 0 and m["objects"] == 1 and m["tool_to_nearest_object_m"] > 0
    assert ros.spin_until(lambda: ros.linked())
    reset.publish(Int64(data=7))
    assert ros.spin_until(lambda: node.episode["seed"] == 7)
    assert ros.spin_until(lambda: json.loads(episodes[-1].data)["seed"] == 7)
    seeds = [json.loads(e.data)["seed"] for e in episodes]
    ended = json.loads(episodes[seeds.index(7) - 1].data)  # the reset ended the seed-0 episode
    assert (ended["seed"], ended["done"], ended["end_reason"]) == (0, True, "reset")


def test_end_episode_publishes_the_final_scores_once(ros):
    node = start(ros, "metrics_period_s:=0.5")
    episodes = ros.collect(String, "/wm/sim/episode", RELIABLE_QOS)
    end = ros.publisher(Empty, "/wm/sim/end_episode", RELIABLE_QOS)
    assert ros.spin_until(lambda: bool(episodes) and ros.linked())
    m = json.loads(episodes[-1].data)
    assert m["done"] is False and m["end_reason"] is None
    assert m["scene"]["n_objects"] == 1 and m["scene"]["real_time_factor"] == 4.0
    assert m["started_s"] <= m["stamp_s"]
    end.publish(Empty())
    assert ros.spin_until(lambda: node.episode["done"])
    assert ros.spin_until(lambda: json.loads(episodes[-1].data)["done"])
    final = json.loads(episodes[-1].data)
    assert final["end_reason"] == "ended" and final["seed"] == 0
    assert final["sim_time_s"] == pytest.approx(final["stamp_s"] - final["started_s"], abs=1e-6)
    n = len(episodes)
    end.publish(Empty())  # already over: no second final, and the scores stay frozen
    ros.spin_for(1.0)
    assert len(episodes) == n


def test_bad_parameters_refuse_to_start(ros):
    with pytest.raises(StartupError, match="n_objects"):
        SimNode(context=ros.context, cli_args=["--ros-args", "-p", "n_objects:=9"])
    with pytest.raises(StartupError, match="n_objects"):
        SimNode(context=ros.context, cli_args=["--ros-args", "-p", "n_objects:=2.5"])
