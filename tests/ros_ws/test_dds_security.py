"""DDS security: what this machine's DDS supports (SROS2 enclaves), and the safety node's
watch over the arm topic where enclaves are not available."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
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
        "wm_pybullet": "/wm/wm_pybullet",  # the second world (real profile, sim:=pybullet)
        "wm_perception": "/wm/wm_perception",
        "wm_planner": "/wm/wm_planner",
        "wm_safety": "/wm/wm_safety",
    }
    # the setup script names the same enclaves and lets only wm_safety publish the arm topic
    script = (ROOT / "scripts" / "sros2_setup.sh").read_text()
    for e in enclaves("real").values():
        assert e in script
    assert "wm_safety" in script and "/arm_controller/joint_trajectory" in script


FAKE_ROS2 = """#!/usr/bin/env bash
# stands in for sros2's `ros2 security`: records each call
echo "$*" >> "$WM_FAKE_ROS2_LOG"
if [ "$2" = create_keystore ]; then mkdir -p "$3/public" && touch "$3/public/ca.cert.pem"; fi
"""


def run_setup_script(tmp_path, **env) -> tuple[list[str], ET.Element]:
    """scripts/sros2_setup.sh with a stand-in `ros2`: its calls and the policy it wrote."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ros2").write_text(FAKE_ROS2)
    (bin_dir / "ros2").chmod(0o755)
    log = tmp_path / "ros2.log"
    ks = tmp_path / "ks"
    environ = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", WM_FAKE_ROS2_LOG=str(log))
    script = ROOT / "scripts" / "sros2_setup.sh"
    subprocess.run(["bash", str(script), str(ks)], env=environ | env, check=True, text=True)
    return log.read_text().splitlines(), ET.parse(ks / "wm_policy.xml").getroot()


def publishers(policy: ET.Element, topic: str) -> list[str]:
    return sorted(
        e.get("path")
        for e in policy.iter("enclave")
        for t in e.iter("topics")
        if t.get("publish") == "ALLOW" and topic in [x.text for x in t.iter("topic")]
    )


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the script checks for openssl")
def test_setup_script_makes_every_enclave_and_only_safety_may_command_the_arm(tmp_path):
    calls, policy = run_setup_script(tmp_path)
    ks = str(tmp_path / "ks")
    assert calls[0] == "security --help" and calls[1] == f"security create_keystore {ks}"
    made = [c.split()[-1] for c in calls if c.startswith("security create_enclave")]
    assert set(enclaves("sim").values()) <= set(made)
    for e in made:
        assert f"security create_permission {ks} {e} {ks}/wm_policy.xml" in calls
    assert sorted(e.get("path") for e in policy.iter("enclave")) == sorted(made)
    assert publishers(policy, "/arm_controller/joint_trajectory") == ["/wm/wm_safety"]
    assert publishers(policy, "/suction/command") == ["/wm/wm_safety"]
    assert publishers(policy, "/wm/plan_cmd") == ["/wm/wm_planner"]
    assert publishers(policy, "/wm/estop") == ["/wm/wm_operator"]
    for e in policy.iter("enclave"):  # each profile is its node, in the enclave of its name
        (profile,) = e.iter("profile")
        assert e.get("path") == f"/wm/{profile.get('node')}" and profile.get("ns") == "/"
    # the real profile's topics
    real = tmp_path / "real"
    real.mkdir()
    arm = "/scaled_joint_trajectory_controller/joint_trajectory"
    _, policy = run_setup_script(real, WM_ARM_TOPIC=arm)
    assert publishers(policy, arm) == ["/wm/wm_safety"]
    assert publishers(policy, "/arm_controller/joint_trajectory") == []


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


PEER = """
import sys, time
import rclpy
from std_msgs.msg import Header
role, enclave, name = sys.argv[1:4]
args = ["--ros-args", "--enclave", enclave] if enclave else []
rclpy.init(args=args)
node = rclpy.create_node(name)
topic = "/wm/safety/command_source"
if role == "talk":
    pub = node.create_publisher(Header, topic, 10)
    for _ in range(150):
        pub.publish(Header(frame_id="secured"))
        rclpy.spin_once(node, timeout_sec=0.05)
else:
    got = []
    node.create_subscription(Header, topic, got.append, 10)
    end = time.monotonic() + 6.0
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    print("HEARD", len(got))
"""


def test_sros2_on_this_machine(tmp_path):
    """A real secured pub/sub where the DDS supports it; else skip with the RMW's reason."""
    result = probe()
    if not result.supported:
        pytest.skip(f"DDS security unavailable here: {result.reason}")
    if shutil.which("ros2") is None:
        pytest.skip(f"{result.reason}, but no `ros2` CLI (sros2) to make a keystore")
    ks = tmp_path / "keystore"
    domain = str(DOMAIN + 3)  # the keystore's governance is bound to the domain it is made for
    env = dict(os.environ, ROS_DOMAIN_ID=domain)
    subprocess.run(["bash", str(ROOT / "scripts" / "sros2_setup.sh"), str(ks)], env=env, check=True)
    for e in enclaves("sim").values():
        for f in SECURITY_FILES:
            assert (ks / "enclaves" / e.lstrip("/") / f).is_file()
    secure = env | {
        "ROS_SECURITY_ENABLE": "true",
        "ROS_SECURITY_STRATEGY": "Enforce",
        "ROS_SECURITY_KEYSTORE": str(ks),
    }

    def peer(role: str, enclave: str, name: str, environ: dict) -> subprocess.Popen:
        cmd = [sys.executable, "-c", PEER, role, enclave, name]
        return subprocess.Popen(cmd, env=environ, stdout=subprocess.PIPE, text=True)

    # wm_safety's enclave publishes command sources; the driver's enclave may read them, a
    # participant without credentials may not
    talker = peer("talk", "/wm/wm_safety", "wm_safety", secure)
    secured = peer("listen", "/wm/wm_episode_driver", "wm_episode_driver", secure)
    outsider = peer("listen", "", "wm_no_credentials", env)
    heard = {}
    for what, proc in (("secured", secured), ("outsider", outsider)):
        out, _ = proc.communicate(timeout=60)
        heard[what] = int(out.split("HEARD")[-1])
    talker.wait(timeout=60)
    assert heard["secured"] > 0 and heard["outsider"] == 0, heard


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
