"""DDS security: what this machine's DDS supports (SROS2 enclaves), and the safety node's
watch over the arm topic where enclaves are not available."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402
from wm_bringup.msgs import SUCTION_JOINT, arm_joint_names, make_trajectory  # noqa: E402
from wm_bringup.nodekit import RELIABLE_QOS  # noqa: E402
from wm_bringup.security import SECURITY_FILES, enclaves, probe  # noqa: E402
from wm_safety.publishers import foreign_publishers  # noqa: E402
from wm_safety.safety_node import SafetyNode  # noqa: E402

from wm_core.cell import sim_cell  # noqa: E402

DOMAIN = 224  # this module uses 224..227
ROOT = __import__("ros_harness").ROOT
NAMES = arm_joint_names()
HOME = np.array(sim_cell().arm.home_q)


@pytest.fixture
def ros():
    from ros_harness import Ros, fresh_domain

    r = Ros(fresh_domain(DOMAIN))
    yield r
    r.close()


def test_enclaves_name_every_node_of_the_stack():
    assert enclaves("sim") == {
        "wm_sim": "/wm/wm_sim",
        "wm_perception": "/wm/wm_perception",
        "wm_planner": "/wm/wm_planner",
        "wm_safety": "/wm/wm_safety",
    }
    # the setup script names the same enclaves and lets only wm_safety publish the arm topic
    script = (ROOT / "scripts" / "sros2_setup.sh").read_text()
    for e in enclaves("real").values():
        assert e in script
    assert "wm_safety" in script and "/arm_controller/joint_trajectory" in script


def test_foreign_publishers_are_all_but_this_node():
    own = ("wm_safety", "/")
    assert foreign_publishers([("wm_safety", "/")], own) == []
    assert foreign_publishers([], own) == []
    assert foreign_publishers([("rogue", "/"), ("wm_safety", "/"), ("x", "/ns")], own) == [
        "/ns/x",
        "/rogue",
    ]
    # a second endpoint under our own name is not ours
    assert foreign_publishers([("wm_safety", "/")] * 2, own) == ["/wm_safety (duplicate)"]


def test_sros2_on_this_machine(tmp_path):
    """A real secured pub/sub where the DDS supports it; else skip with the RMW's reason."""
    result = probe()
    if not result.supported:
        pytest.skip(f"DDS security unavailable here: {result.reason}")
    if shutil.which("ros2") is None:
        pytest.skip(f"{result.reason}, but no `ros2` CLI (sros2) to make a keystore")
    ks = tmp_path / "keystore"
    env = dict(os.environ, WM_KEYSTORE=str(ks))
    subprocess.run(["bash", str(ROOT / "scripts" / "sros2_setup.sh"), str(ks)], env=env, check=True)
    for e in enclaves("sim").values():
        for f in SECURITY_FILES:
            assert (ks / "enclaves" / e.lstrip("/") / f).is_file()
    talker = (
        "import sys, time, rclpy\n"
        "from std_msgs.msg import String\n"
        "rclpy.init(args=['--ros-args', '--enclave', sys.argv[1]])\n"
        "n = rclpy.create_node('wm_safety')\n"
        "p = n.create_publisher(String, '/wm/security_check', 10)\n"
        "for _ in range(100):\n"
        "    p.publish(String(data='secured')); time.sleep(0.05)\n"
    )
    secure = dict(
        os.environ,
        ROS_SECURITY_ENABLE="true",
        ROS_SECURITY_STRATEGY="Enforce",
        ROS_SECURITY_KEYSTORE=str(ks),
        ROS_DOMAIN_ID=str(DOMAIN + 3),
    )
    proc = subprocess.Popen(["python", "-c", talker, "/wm/wm_safety"], env=secure)
    try:
        # a participant without credentials must hear nothing from the secured one
        ctx = rclpy.Context()
        rclpy.init(context=ctx, domain_id=DOMAIN + 3)
        node = rclpy.create_node("wm_no_credentials", context=ctx)
        got: list = []
        node.create_subscription(String, "/wm/security_check", got.append, 10)
        ex = rclpy.executors.SingleThreadedExecutor(context=ctx)
        ex.add_node(node)
        for _ in range(100):
            ex.spin_once(timeout_sec=0.05)
        assert got == []
        ctx.try_shutdown()
    finally:
        proc.wait(timeout=30)


def test_safety_node_reports_a_rogue_arm_publisher(ros):
    """A node without credentials publishes on the arm topic: the safety node still takes
    commands only from /wm/plan_cmd, and reports the intruder on /diagnostics as an ERROR."""
    args = ["--ros-args", "-p", "publisher_check_period_s:=0.2", "-p", "diagnostics_period_s:=0.1"]
    node = ros.add(SafetyNode(context=ros.context, cli_args=args))
    node.autostart()
    js = ros.publisher(JointState, "/joint_states", RELIABLE_QOS)
    ros.probe.create_timer(
        0.02,
        lambda: js.publish(
            JointState(name=[*NAMES, SUCTION_JOINT], position=[*map(float, HOME), 0.0])
        ),
    )
    diags = ros.collect(DiagnosticArray, "/diagnostics", RELIABLE_QOS)
    ros.collect(String, "/wm/none", RELIABLE_QOS)  # (keeps linked() meaningful below)
    ros.endpoints.pop()

    def safety_status():
        for msg in reversed(diags):
            for st in msg.status:
                if st.name == "/wm_safety":
                    return st
        return None

    assert ros.spin_until(lambda: node.q is not None and safety_status() is not None)
    ros.spin_for(0.5)
    st = safety_status()
    assert st.level != DiagnosticStatus.ERROR, st.message
    assert {kv.key: kv.value for kv in st.values}["foreign_arm_publishers"] == ""

    rogue = ros.add(rclpy.create_node("wm_rogue", context=ros.context))
    pub = rogue.create_publisher(JointTrajectory, "/arm_controller/joint_trajectory", RELIABLE_QOS)
    commands_before = node.stats["commands"]
    for _ in range(5):
        pub.publish(make_trajectory(NAMES, HOME[None], [0.1], [False]))
        ros.spin_for(0.1)

    def reported():
        s = safety_status()
        return s is not None and s.level == DiagnosticStatus.ERROR and "/wm_rogue" in s.message

    assert ros.spin_until(reported, timeout=10.0)
    kv = {kv.key: kv.value for kv in safety_status().values}
    assert kv["foreign_arm_publishers"] == "/wm_rogue"
    assert node.stats["commands"] == commands_before  # the arm topic is not a command input
    # the rogue leaves: the report clears
    rogue.destroy_publisher(pub)
    assert ros.spin_until(lambda: "/wm_rogue" not in (safety_status() or st).message)
    assert node.foreign == []
