"""The colcon workspace builds, and ROS 2 from PyPI runs real rclpy here."""

import re
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "ros_ws" / "install"


def test_colcon_installed_wm_bringup():
    share = INSTALL / "wm_bringup" / "share"
    assert (share / "wm_bringup" / "package.xml").is_file(), "run `make setup` (colcon build)"
    assert (share / "ament_index" / "resource_index" / "packages" / "wm_bringup").is_file()
    assert (INSTALL / "wm_bringup" / "lib" / "wm_bringup" / "wm_bringup_info").is_file()


def test_wm_core_never_imports_rclpy():
    pattern = re.compile(r"^\s*(import rclpy|from rclpy)", re.MULTILINE)
    offenders = [p for p in (ROOT / "wm_core").rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_rclpy_pub_sub_over_dds():
    rclpy = pytest.importorskip("rclpy")
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import String

    rclpy.init()
    try:
        pub_node = rclpy.create_node("wm_test_pub")
        sub_node = rclpy.create_node("wm_test_sub")
        got = threading.Event()
        sub_node.create_subscription(String, "/wm_test", lambda m: got.set(), 10)
        pub = pub_node.create_publisher(String, "/wm_test", 10)
        ex = SingleThreadedExecutor()
        ex.add_node(pub_node)
        ex.add_node(sub_node)
        for _ in range(50):
            pub.publish(String(data="hello"))
            ex.spin_once(timeout_sec=0.1)
            if got.is_set():
                break
        assert got.is_set(), "no message received over DDS"
        ex.shutdown()
        pub_node.destroy_node()
        sub_node.destroy_node()
    finally:
        rclpy.shutdown()
