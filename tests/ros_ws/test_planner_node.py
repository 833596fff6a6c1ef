"""wm_planner: latent + joint state -> JointTrajectory, markers, surprise, diagnostics."""

from __future__ import annotations

import numpy as np
import pytest

DOMAIN = 130  # this module uses 130..139

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.duration import Duration  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.time import Time  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import Float32  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402
from wm_bringup.msgs import SUCTION_JOINT, arm_joint_names, make_trajectory, to_seconds  # noqa: E402
from wm_bringup.nodekit import RELIABLE_QOS, SENSOR_QOS, StartupError  # noqa: E402
from wm_bringup.vizmsgs import parse_cost_values, parse_detection_markers  # noqa: E402
from wm_perception.perception_node import latent_msg  # noqa: E402
from wm_planner.planner_node import PlannerNode  # noqa: E402

from wm_core.cell import sim_cell  # noqa: E402
from wm_core.robot import ArmKinematics  # noqa: E402
from wm_core.robot.action import joint_target  # noqa: E402

NAMES = arm_joint_names()
HOME = np.array(sim_cell().arm.home_q)


@pytest.fixture
def ros():
    from ros_harness import Ros, fresh_domain

    r = Ros(fresh_domain(DOMAIN))
    yield r
    r.close()


def start(ros, model_dir, *params: str) -> PlannerNode:
    args = ["--ros-args", "-p", f"model_dir:={model_dir}", "-p", "samples:=32"]
    args += [a for p in params for a in ("-p", p)]
    node = ros.add(PlannerNode(context=ros.context, cli_args=args))
    node.autostart()
    return node


def latent(stamp, seed: int = 0) -> Image:
    z = np.random.default_rng(seed).normal(size=(16, 8)).astype(np.float32)  # [N, D]
    src = Image()
    src.header.stamp = stamp
    return latent_msg(z, src)


def feed_joints(ros):
    pub = ros.publisher(JointState, "/joint_states", RELIABLE_QOS)

    def tick():
        pub.publish(JointState(name=[*NAMES, SUCTION_JOINT], position=[*map(float, HOME), 0.0]))

    ros.probe.create_timer(0.02, tick)


def test_plan_command_markers_and_surprise(ros, tiny_model_dir):
    # the stamp is under test, not the latent's age (it has its own test): under load the
    # planner's first plan can come more than the default 0.5 s after this stamp
    node = start(ros, tiny_model_dir, "trajectory_points:=3", "max_latent_age_s:=30.0")
    feed_joints(ros)
    cmds = ros.collect(JointTrajectory, "/wm/plan_cmd", RELIABLE_QOS)
    markers = ros.collect(MarkerArray, "/wm/plan_markers", RELIABLE_QOS)
    detections = ros.collect(MarkerArray, "/wm/detections", RELIABLE_QOS)
    surprise = ros.collect(Float32, "/wm/surprise", RELIABLE_QOS)
    diags = ros.collect(DiagnosticArray, "/diagnostics", RELIABLE_QOS)
    pub = ros.publisher(Image, "/wm/latent", SENSOR_QOS)
    assert ros.spin_until(lambda: node.q is not None and ros.linked())
    info = ros.probe.get_publishers_info_by_topic("/wm/plan_cmd")
    assert info[0].qos_profile.reliability.name == "RELIABLE"

    stamp = ros.probe.get_clock().now().to_msg()
    assert ros.spin_until(lambda: (pub.publish(latent(stamp)), bool(cmds))[1], timeout=15.0)
    cmd = cmds[0]
    assert list(cmd.joint_names) == [*NAMES, SUCTION_JOINT]
    assert (cmd.header.stamp.sec, cmd.header.stamp.nanosec) == (stamp.sec, stamp.nanosec)
    assert 1 <= len(cmd.points) <= 3
    times = [to_seconds(p.time_from_start) for p in cmd.points]
    np.testing.assert_allclose(times, 0.1 * np.arange(1, len(times) + 1))
    q1 = np.array(cmd.points[0].positions[:6])
    assert np.isfinite(q1).all() and cmd.points[0].positions[6] in (0.0, 1.0)
    kin = ArmKinematics()
    step = np.linalg.norm(kin.tool_position(q1) - kin.tool_position(HOME))
    assert step <= 0.018 * np.sqrt(3) + 1e-3  # one tool step at most
    assert ros.spin_until(lambda: bool(markers) and bool(surprise))
    assert markers[0].markers[0].header.frame_id == "world"
    assert len(markers[0].markers[0].points) == node.config.planner.horizon
    # the readout's view of the step, stamped like the command: detections, target, status
    assert ros.spin_until(lambda: bool(detections))
    view = parse_detection_markers(detections[0])
    assert detections[0].markers[0].header.stamp == stamp
    assert view["phase"]  # the task layer always names its phase
    assert view["detections"].shape[1] == 4
    # the plan's cost breakdown in the diagnostics
    assert ros.spin_until(
        lambda: any(
            s.name.endswith("wm_planner") and any(kv.key == "cost_total" for kv in s.values)
            for d in diags
            for s in d.status
        ),
    )
    kv = next(
        {kv.key: kv.value for kv in s.values}
        for d in diags
        for s in d.status
        if s.name.endswith("wm_planner") and any(kv.key == "cost_total" for kv in s.values)
    )
    terms = parse_cost_values(kv)
    assert {"goal", "collision", "total"} <= set(terms)


def test_actions_start_from_the_command_the_arm_was_sent(ros, tiny_model_dir):
    """The commanded basis (wm_core.robot.action): the next command is one tool step from the
    last command the safety node sent the arm, or from the measured joints once that command
    is further than the re-sync distance from the arm."""
    # the basis, not the latent's age, is under test (the age has its own test below): under
    # load a latent went stale before the planner took it, and the hold failed this test
    node = start(ros, tiny_model_dir, "max_latent_age_s:=30.0")
    feed_joints(ros)  # the arm measures HOME
    cmds = ros.collect(JointTrajectory, "/wm/plan_cmd", RELIABLE_QOS)
    arm = ros.publisher(JointTrajectory, "/arm_controller/joint_trajectory", RELIABLE_QOS)
    pub = ros.publisher(Image, "/wm/latent", SENSOR_QOS)
    assert ros.spin_until(lambda: node.q is not None and ros.linked())
    kin, cell = ArmKinematics(), sim_cell()
    lo, hi = np.array(cell.workspace_lo), np.array(cell.workspace_hi)
    for pan, basis in ((0.07, "sent"), (0.5, "measured")):
        sent = HOME + np.array([pan, 0, 0, 0, 0, 0])  # pan 0.07: the tool 4 cm away; 0.5: far
        arm.publish(make_trajectory(NAMES, sent[None], [0.1], [False]))
        assert ros.spin_until(
            lambda s=sent: node.q_sent is not None and np.allclose(node.q_sent, s)
        )
        cmds.clear()
        # the last command with the last action, once the latents in flight are planned (the
        # first command and a later plan's action need not match)
        assert ros.spin_until(
            lambda: (pub.publish(latent(ros.probe.get_clock().now().to_msg())), bool(cmds))[1],
            timeout=15.0,
        )
        ros.spin_for(1.0)
        with node._plan_lock:  # no plan in progress: its action and its latent's stamp
            action, stamp_ns = node.last_action, node.last_latent_ns

        def planned(ns=stamp_ns):  # the command made from that latent (it may be in flight)
            return [c for c in cmds if Time.from_msg(c.header.stamp).nanoseconds == ns]

        assert ros.spin_until(lambda: bool(planned()))
        want = joint_target(kin, action, sent if basis == "sent" else HOME, lo, hi, 0.018)
        np.testing.assert_allclose(planned()[-1].points[0].positions[:6], want.q, atol=1e-9)


def test_stale_latents_are_dropped_and_the_arm_holds(ros, tiny_model_dir):
    node = start(ros, tiny_model_dir, "max_latent_age_s:=0.3")
    feed_joints(ros)
    cmds = ros.collect(JointTrajectory, "/wm/plan_cmd", RELIABLE_QOS)
    pub = ros.publisher(Image, "/wm/latent", SENSOR_QOS)
    assert ros.spin_until(lambda: node.q is not None and ros.linked())
    old = (ros.probe.get_clock().now() - Duration(seconds=1.0)).to_msg()
    assert ros.spin_until(lambda: (pub.publish(latent(old)), bool(cmds))[1], timeout=10.0)
    assert node.stats["stale_latents"] >= 1 and node.stats["plans"] == 0
    np.testing.assert_allclose(cmds[0].points[0].positions[:6], HOME, atol=1e-9)
    bad = latent(ros.probe.get_clock().now().to_msg())
    bad.width = 7  # geometry no longer matches the data
    pub.publish(bad)
    assert ros.spin_until(lambda: node.stats["bad"] >= 1)


def test_parameters_map_onto_the_configs_and_are_validated(ros, tiny_model_dir):
    node = start(ros, tiny_model_dir, "optimizer:=mppi", "horizon:=4", "control_hz:=20.0")
    assert node.config.planner.optimizer == "mppi"
    assert node.config.planner.control_dt == pytest.approx(0.05)
    assert node.policy.mpc.cfg.horizon == 4
    with pytest.raises(StartupError, match="trajectory_points"):
        PlannerNode(
            context=ros.context,
            cli_args=["--ros-args", "-p", "trajectory_points:=9", "-p", "horizon:=5"],
        )
    with pytest.raises(StartupError, match="optimizer"):
        PlannerNode(context=ros.context, cli_args=["--ros-args", "-p", "optimizer:=adam"])
    for bad in ("[a, b, c]", "[a, b, c, d, e, a]", "[a, b, c, d, e, suction_cup]"):
        with pytest.raises(StartupError, match="joint_names"):
            PlannerNode(context=ros.context, cli_args=["--ros-args", "-p", f"joint_names:={bad}"])
    assert node.names == NAMES and node.config.use_camera_info_intrinsics is False
    res = node.set_parameters([Parameter("trajectory_points", value=5)])
    assert not res[0].successful and "horizon" in res[0].reason
    assert not node.set_parameters([Parameter("samples", value=1)])[0].successful
    node.stop()
    assert node.policy is None


def test_the_object_disturbance_weight_loads_the_object_model(ros, tiny_model_dir, tmp_path):
    import shutil

    import torch

    from wm_core.models.objects import ObjectDynamics

    node = start(ros, tiny_model_dir)
    assert node.policy.objects is None and node.config.planner.weights.object_disturbance == 0
    node.stop()
    without = ros.add(  # the tiny model has no objects.pt: refused, saying how to make one
        PlannerNode(
            context=ros.context,
            cli_args=["--ros-args", "-p", f"model_dir:={tiny_model_dir}"]
            + ["-p", "object_disturbance:=10.0"],
        )
    )
    with pytest.raises(StartupError, match="wm train objects"):
        without.autostart()
    model_dir = tmp_path / "with_objects"
    shutil.copytree(tiny_model_dir, model_dir)
    torch.save(ObjectDynamics().to_state(), model_dir / "objects.pt")
    node = start(ros, model_dir, "object_disturbance:=10.0")
    assert node.policy.objects is not None and node.policy.settings["object_model"]
    assert node.policy.mpc.cfg.weights.object_disturbance == 10.0
    node.stop()


def test_the_world_model_backend_is_a_parameter_and_never_falls_back(ros, tiny_model_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    from wm_core.deploy.onnx_export import export_onnx

    export_onnx(tiny_model_dir / "model.pt", tmp_path / "onnx")
    node = start(ros, tiny_model_dir, "backend:=onnxruntime", f"onnx_dir:={tmp_path / 'onnx'}")
    assert node.policy.settings["backend"] == "onnxruntime"
    assert node.config.backend.backend == "onnxruntime"
    node.stop()
    with pytest.raises(StartupError, match="backend"):
        PlannerNode(context=ros.context, cli_args=["--ros-args", "-p", "backend:=caffe"])
    missing = ros.add(  # the tiny model has no export of its own: refused, with the reason
        PlannerNode(
            context=ros.context,
            cli_args=[
                "--ros-args",
                "-p",
                f"model_dir:={tiny_model_dir}",
                "-p",
                "backend:=onnxruntime",
            ],
        )
    )
    with pytest.raises(StartupError, match="manifest.json does not exist"):
        missing.autostart()
    grad = ros.add(
        PlannerNode(
            context=ros.context,
            cli_args=[
                "--ros-args",
                "-p",
                f"model_dir:={tiny_model_dir}",
                "-p",
                "backend:=onnxruntime",
                "-p",
                f"onnx_dir:={tmp_path / 'onnx'}",
                "-p",
                "optimizer:=gradient",
            ],
        )
    )
    with pytest.raises(StartupError, match="optimizer='gradient'"):
        grad.autostart()


def test_lifecycle_services_are_answered_while_plans_keep_it_busy(ros, tiny_model_dir):
    """A multi-threaded executor (the in-process runner's) must not starve the lifecycle
    services behind the always-waiting next latent: the episode driver needs them.

    It failed about 1 run in 3 with rclpy's MultiThreadedExecutor, whose spinning thread
    resubmits queued callbacks and starves the workers of the GIL (wm_bringup.executor)."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState

    node = start(ros, tiny_model_dir, "samples:=1024", "iterations:=4")
    feed_joints(ros)
    pub = ros.publisher(Image, "/wm/latent", SENSOR_QOS)
    ros.probe.create_timer(0.02, lambda: pub.publish(latent(ros.probe.get_clock().now().to_msg())))
    get_state = ros.probe.create_client(GetState, "/wm_planner/get_state")
    change = ros.probe.create_client(ChangeState, "/wm_planner/change_state")
    assert ros.spin_until(lambda: node.stats["plans"] >= 3 and get_state.service_is_ready(), 30)
    assert node.stats["plan_ms"] > 20.0  # each plan outlasts the 20 ms latent period

    def answered(future, timeout: float = 5.0) -> bool:
        return ros.spin_until(future.done, timeout=timeout)

    t0 = node.stats["plans"]
    assert answered(get_state.call_async(GetState.Request()))
    future = change.call_async(
        ChangeState.Request(transition=Transition(id=Transition.TRANSITION_DEACTIVATE))
    )
    assert answered(future) and future.result().success
    assert node.stats["plans"] > t0  # it was planning all along
    plans = node.stats["plans"]
    ros.spin_for(0.5)
    assert node.stats["plans"] == plans  # inactive: no more plans


def test_a_stage3_readout_plans_on_the_map_that_came_with_the_latent(ros, tiny_model_dir, tmp_path):
    """With a readout that reads encoder stage 3, the planner takes its raw map from the
    latent message (perception's); a latent without it is dropped with a line naming why."""
    import shutil

    torch = pytest.importorskip("torch")
    from wm_core.models.checkpoint import load_checkpoint
    from wm_core.train.readout import new_readout

    shutil.copy(tiny_model_dir / "model.pt", tmp_path / "model.pt")
    ro = new_readout(load_checkpoint(tmp_path / "model.pt"), 0, source="stage3")
    with torch.no_grad():
        ro.conv.bias[0] = 5.0  # an object in every patch: the detections show the map was read
    torch.save(
        {"version": 1, "hidden": 0, "source": "stage3", "state": ro.state_dict()},
        tmp_path / "readout.pt",
    )
    node = start(ros, tmp_path, "max_latent_age_s:=30.0")
    assert node.policy.readout_stage == 3
    feed_joints(ros)
    cmds = ros.collect(JointTrajectory, "/wm/plan_cmd", RELIABLE_QOS)
    detections = ros.collect(MarkerArray, "/wm/detections", RELIABLE_QOS)
    pub = ros.publisher(Image, "/wm/latent", SENSOR_QOS)
    assert ros.spin_until(lambda: node.q is not None and ros.linked())
    pub.publish(latent(ros.probe.get_clock().now().to_msg()))  # the latent alone
    assert ros.spin_until(lambda: node.stats["bad"] >= 1)
    assert cmds == [] and node.stats["plans"] == 0
    z = np.random.default_rng(0).normal(size=(1, 16, 8)).astype(np.float32)
    raw = np.zeros((1, 4, 8, 8), np.float32)
    raw[0, 0] = 5.0  # objectness logits: every patch
    src = Image()
    src.header.stamp = ros.probe.get_clock().now().to_msg()
    msg = latent_msg(z, src, raw)
    assert ros.spin_until(lambda: (pub.publish(msg), bool(cmds))[1], timeout=15.0)
    assert ros.spin_until(lambda: bool(detections))
    assert len(parse_detection_markers(detections[-1])["detections"]) > 0
