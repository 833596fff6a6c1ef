"""The real profile against a fake ros2_control arm and a fake camera, over DDS.

The perception, planner and safety nodes are built from ``describe("real", ...)`` exactly as
the runner's in-process stack builds them (the same ``--ros-args``), on the tiny model. A fake
joint_trajectory_controller follows the profile's arm topic (it jumps to each command's first
point, and rejects a trajectory whose joints are not exactly its six, as a real JTC does) and
publishes ``/joint_states``; a fake camera driver publishes images and camera_info at 10 Hz,
stamped now, on the profile's camera topics. Its camera_info disagrees with the cell file's
camera (fx 15 % longer), so the planner's check has something to find.

- shadow mode: nothing ever reaches the arm or the suction topic (no publisher there at all),
  while the safety node's commands appear on ``/wm/shadow/joint_trajectory`` and the planner
  takes its action basis from there;
- live mode, with renamed joints and every topic moved: only ``wm_safety`` publishes on the arm
  and suction topics, the arm got exactly the commands the safety node sent, and each one
  passed the filter: inside the joint limits, free of the table, obstacles and keep-out boxes,
  and either within one velocity-limited step of the previous command or a hold at a position
  the arm reported.

Staleness limits are relaxed (2 s) so that a loaded 2-core CI machine does not turn every
command into a hold; holds are commands too, and every check holds for them.
"""

from __future__ import annotations

import importlib
import time

import numpy as np
import pytest

DOMAIN = 190  # this module uses 190..199

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState  # noqa: E402
from std_msgs.msg import Bool, Header  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402
from wm_bringup.msgs import SUCTION_JOINT, arm_joint_names, is_zero  # noqa: E402
from wm_bringup.nodekit import RELIABLE_QOS, SENSOR_QOS  # noqa: E402
from wm_bringup.stack import (  # noqa: E402
    REAL_ARM_COMMAND_TOPIC,
    REAL_CAMERA_INFO_TOPIC,
    REAL_IMAGE_TOPIC,
    SHADOW_TOPIC,
    SUCTION_TOPIC,
    describe,
)
from wm_planner.camera_info import camera_from_info, intrinsics_disagreement  # noqa: E402

from wm_core.cell import sim_cell  # noqa: E402
from wm_core.config import ConfigError  # noqa: E402
from wm_core.safety import SafetyFilter  # noqa: E402
from wm_core.train.readout import priors_for  # noqa: E402

CELL = sim_cell()
HOME = np.array(CELL.arm.home_q)
URDF_NAMES = arm_joint_names()
IMAGE_SIZE = 128
FX_SCALE = 1.15  # the fake camera's focal length against the cell file's
WAIT_S = 120.0  # upper bound only: every wait ends as soon as its condition holds


@pytest.fixture
def ros():
    from ros_harness import Ros, fresh_domain

    r = Ros(fresh_domain(DOMAIN))
    yield r
    r.close()


def camera_info(stamp=None, fx_scale: float = FX_SCALE, size: int = IMAGE_SIZE) -> CameraInfo:
    """The cell's camera at ``size`` px, its focal length scaled by ``fx_scale``."""
    k = CELL.camera.k_for(size)
    k[0, 0] *= fx_scale
    k[1, 1] *= fx_scale
    msg = CameraInfo(width=size, height=size, distortion_model="plumb_bob")
    msg.k = [float(x) for x in k.reshape(-1)]
    msg.d = [0.0] * 5
    msg.header.frame_id = "camera_color_optical_frame"
    if stamp is not None:
        msg.header.stamp = stamp
    return msg


class FakeArm:
    """A ros2_control joint_trajectory_controller stand-in with joints ``names``."""

    def __init__(self, ros, topic: str, names):
        self.node = ros.add(rclpy.create_node("fake_jtc", context=ros.context))
        self.names = list(names)
        self.q = HOME.copy()
        self.reported = [HOME.copy()]  # every position it has published
        self.received: list[JointTrajectory] = []
        self.rejected: list[JointTrajectory] = []
        self.pub = self.node.create_publisher(JointState, "/joint_states", RELIABLE_QOS)
        self.node.create_subscription(JointTrajectory, topic, self.on_command, RELIABLE_QOS)
        self.node.create_timer(0.02, self.tick)

    def on_command(self, msg: JointTrajectory) -> None:
        self.received.append(msg)
        if sorted(msg.joint_names) != sorted(self.names) or not msg.points:
            self.rejected.append(msg)  # a JTC refuses unknown or missing joints
            return
        cols = [list(msg.joint_names).index(n) for n in self.names]
        self.q = np.asarray(msg.points[0].positions, float)[cols]

    def tick(self) -> None:
        msg = JointState(name=self.names, position=[float(x) for x in self.q])
        msg.header.stamp = self.node.get_clock().now().to_msg()
        self.pub.publish(msg)
        if not np.array_equal(self.q, self.reported[-1]):
            self.reported.append(self.q.copy())


class FakeCamera:
    """A camera driver: rgb8 images (a fixed textured scene with a little noise) and
    camera_info at 10 Hz, stamped now."""

    def __init__(self, ros, image_topic: str, info_topic: str):
        self.node = ros.add(rclpy.create_node("fake_camera", context=ros.context))
        self.on = True
        self.rng = np.random.default_rng(0)
        yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
        base = np.stack([xx * 2, yy * 2, (xx + yy) % 256], axis=-1)  # [S, S, 3]
        self.base = base.astype(np.int16)
        self.pub_image = self.node.create_publisher(Image, image_topic, SENSOR_QOS)
        self.pub_info = self.node.create_publisher(CameraInfo, info_topic, SENSOR_QOS)
        self.info = camera_info()
        self.node.create_timer(0.1, self.tick)

    def tick(self) -> None:
        if not self.on:
            return
        stamp = self.node.get_clock().now().to_msg()
        noise = self.rng.integers(-4, 5, size=self.base.shape)
        pixels = np.clip(self.base + noise, 0, 255).astype(np.uint8)
        img = Image(height=IMAGE_SIZE, width=IMAGE_SIZE, encoding="rgb8", is_bigendian=0)
        img.step = 3 * IMAGE_SIZE
        img.data = pixels.tobytes()
        img.header.stamp, img.header.frame_id = stamp, self.info.header.frame_id
        self.info.header.stamp = stamp
        self.pub_image.publish(img)
        self.pub_info.publish(self.info)


def start_real_stack(ros, model_dir, arguments: dict) -> dict:
    """The real profile's nodes, built from describe() as the in-process runner builds them."""
    stack = describe(
        "real",
        arguments=arguments,
        overrides={
            "wm_perception": {"model_dir": str(model_dir)},
            "wm_planner": {
                "model_dir": str(model_dir),
                "samples": 32,
                "iterations": 2,
                "max_latent_age_s": 2.0,
                "max_state_age_s": 2.0,
            },
            "wm_safety": {"stale_after_s": 2.0},
        },
    )
    assert [n.name for n in stack.running()] == ["wm_perception", "wm_planner", "wm_safety"]
    nodes = {}
    for spec in stack.running():
        cls = importlib.import_module(spec.module).NODE_CLASS
        node = cls(spec.name, context=ros.context, cli_args=spec.ros_args(stack.params_file))
        nodes[spec.name] = ros.add(node)
        node.autostart()
    return nodes


def settled(ros, safety, quiet_s: float = 3.0) -> bool:
    """Spin until the safety node holds and has sent nothing for ``quiet_s`` (after the camera
    stops: the planner stops, the watchdog holds once, then nothing more is sent)."""
    last = [safety.stats["sent"], time.monotonic()]

    def quiet() -> bool:
        if safety.stats["sent"] != last[0]:
            last[:] = [safety.stats["sent"], time.monotonic()]
        return safety.holding is not None and time.monotonic() - last[1] >= quiet_s

    return ros.spin_until(quiet, WAIT_S)


def publishers(ros, topic: str) -> list[str]:
    return sorted(i.node_name for i in ros.probe.get_publishers_info_by_topic(topic))


def cell_priors(planner, cell=CELL) -> np.ndarray:
    return priors_for(planner.policy.model, cell)


def test_shadow_mode_judges_every_command_and_sends_nothing_to_the_arm(ros, tiny_model_dir):
    arm = FakeArm(ros, REAL_ARM_COMMAND_TOPIC, URDF_NAMES)
    camera = FakeCamera(ros, REAL_IMAGE_TOPIC, REAL_CAMERA_INFO_TOPIC)
    suction = ros.collect(Bool, SUCTION_TOPIC, RELIABLE_QOS)
    shadow = ros.collect(JointTrajectory, SHADOW_TOPIC, RELIABLE_QOS)
    sources = ros.collect(Header, "/wm/safety/command_source", RELIABLE_QOS)
    markers = ros.collect(MarkerArray, "/wm/plan_markers", RELIABLE_QOS)
    diags = ros.collect(DiagnosticArray, "/diagnostics", RELIABLE_QOS)
    nodes = start_real_stack(
        ros, tiny_model_dir, {"shadow": "true", "use_camera_info_intrinsics": "true"}
    )
    planner, safety = nodes["wm_planner"], nodes["wm_safety"]

    def safety_diagnostics():
        return [s for d in diags for s in d.status if s.name.endswith("wm_safety") and s.values]

    def ready() -> bool:
        seen = len(shadow) >= 8 and sources and markers and safety_diagnostics()
        return bool(seen) and planner.stats["readout_camera"] == "camera_info"

    assert ros.spin_until(ready, WAIT_S), (len(shadow), planner.stats, safety.stats)
    camera.on = False
    assert settled(ros, safety), (safety.holding, safety.stats)
    assert ros.spin_until(lambda: len(shadow) == safety.stats["sent"], WAIT_S)

    # nothing on the arm or the suction: no message, and no publisher to send one
    assert arm.received == [] and suction == []
    assert publishers(ros, REAL_ARM_COMMAND_TOPIC) == []
    assert publishers(ros, SUCTION_TOPIC) == []
    assert publishers(ros, SHADOW_TOPIC) == ["wm_safety"]
    readers = ros.probe.get_subscriptions_info_by_topic(SHADOW_TOPIC)
    assert sorted(r.node_name for r in readers) == ["wm_planner", "wm_test_probe"]
    assert len(arm.reported) == 1 and np.array_equal(arm.q, HOME)  # the arm never moved

    # what it would have sent: the arm's joints plus the suction, one per safety send
    assert all(list(m.joint_names) == [*URDF_NAMES, SUCTION_JOINT] for m in shadow)
    assert all(is_zero(m.header.stamp) for m in shadow)
    assert planner.q_sent is not None  # its action basis follows the shadow topic
    status = safety_diagnostics()[-1]
    assert "shadow mode" in status.message
    assert {kv.key: kv.value for kv in status.values}["shadow"] == "True"

    # use_camera_info_intrinsics: the readout priors are the published camera's
    published = camera_from_info(camera.info, CELL.camera)
    assert planner.stats["readout_camera"] == "camera_info"
    assert planner.stats["camera_info"].startswith("disagrees")
    np.testing.assert_allclose(
        planner.policy.readout.priors.numpy(), cell_priors(planner, CELL.with_camera(published))
    )
    assert not np.allclose(planner.policy.readout.priors.numpy(), cell_priors(planner))


def test_live_mode_every_arm_command_passed_the_filter(ros, tiny_model_dir):
    names = [f"ur5e_{n}" for n in URDF_NAMES]  # a driver that names the joints otherwise
    topics = {
        "arm_topic": "/ur/jtc/joint_trajectory",
        "image_topic": "/cam/rgb/image_raw",
        "camera_info_topic": "/cam/rgb/camera_info",
        "suction_topic": "/gripper/suction",
    }
    arm = FakeArm(ros, topics["arm_topic"], names)
    camera = FakeCamera(ros, topics["image_topic"], topics["camera_info_topic"])
    suction = ros.collect(Bool, topics["suction_topic"], RELIABLE_QOS)
    shadow = ros.collect(JointTrajectory, SHADOW_TOPIC, RELIABLE_QOS)
    nodes = start_real_stack(ros, tiny_model_dir, {"joint_names": ",".join(names), **topics})
    planner, safety = nodes["wm_planner"], nodes["wm_safety"]

    def ready() -> bool:
        seen = planner.stats["plans"] >= 8 and len(arm.received) >= 8
        return seen and planner.stats["camera_info"] != "none yet"

    assert ros.spin_until(ready, WAIT_S), (planner.stats, safety.stats, len(arm.received))
    assert publishers(ros, topics["arm_topic"]) == ["wm_safety"]  # nobody else drives the arm
    assert publishers(ros, topics["suction_topic"]) == ["wm_safety"]
    assert publishers(ros, REAL_ARM_COMMAND_TOPIC) == [] and publishers(ros, SHADOW_TOPIC) == []

    camera.on = False
    assert settled(ros, safety), (safety.holding, safety.stats)
    assert ros.spin_until(
        lambda: len(arm.received) == safety.stats["sent"] == len(suction), WAIT_S
    ), (len(arm.received), safety.stats, len(suction))
    ros.spin_for(0.5)  # nothing else arrives
    assert ros.spin_until(lambda: len(arm.received) == safety.stats["sent"] == len(suction))
    assert shadow == [] and arm.rejected == []
    assert planner.q_sent is not None  # its action basis is the arm topic (remapped)

    flt = SafetyFilter(safety.config.filter, safety.config.cell)
    qs = []
    for msg in arm.received:
        assert is_zero(msg.header.stamp) and list(msg.joint_names) == names  # no suction_cup
        qs.append(np.asarray(msg.points[0].positions, float))
    qs = np.array(qs)  # [C, 6]
    assert np.all(qs >= flt.lower - 1e-9) and np.all(qs <= flt.upper + 1e-9)
    assert flt.violations(qs).max() <= 1e-9  # no table, obstacle or keep-out intrusion
    max_tool_step = flt.cfg.tool_speed_limit * flt.cfg.control_dt
    prev = HOME
    for k, q in enumerate(qs):
        tool_step = np.linalg.norm(flt.kin.tool_position(q) - flt.kin.tool_position(prev))
        step_ok = np.all(np.abs(q - prev) <= flt.max_step + 1e-9)
        step_ok = step_ok and tool_step <= max_tool_step + 1e-6
        hold = any(np.allclose(q, r, atol=1e-9) for r in arm.reported)
        assert step_ok or hold, f"command {k}: {q - prev} from the last one is not one step"
        prev = q
    counts = safety.filter.counts
    assert counts["ok"] + counts["clamped"] >= 1, dict(counts)
    assert safety.stats["commands"] >= 8

    # the camera_info check: it disagrees, is reported, and the cell file's camera stays
    assert planner.stats["camera_info"].startswith("disagrees")
    assert planner.stats["readout_camera"] == "cell file"
    np.testing.assert_allclose(planner.policy.readout.priors.numpy(), cell_priors(planner))


def test_camera_info_is_compared_with_the_cell_at_its_own_size():
    same = camera_from_info(camera_info(fx_scale=1.0, size=64), CELL.camera)
    err, _ = intrinsics_disagreement(same, CELL.camera)
    assert err < 1e-9  # the cell's camera at 64 px: K scaled, no disagreement
    longer = camera_from_info(camera_info(), CELL.camera)
    err, text = intrinsics_disagreement(longer, CELL.camera)
    assert err == pytest.approx(FX_SCALE - 1.0) and "worst: fx" in text
    wide = camera_info(fx_scale=1.0)
    wide.width = 2 * IMAGE_SIZE  # another aspect ratio
    err, text = intrinsics_disagreement(camera_from_info(wide, CELL.camera), CELL.camera)
    assert err >= 0.5
    with pytest.raises(ConfigError, match="camera.K"):
        camera_from_info(CameraInfo(width=640, height=480), CELL.camera)  # uncalibrated: zeros
