"""Test harness for the ROS node tests: real rclpy over real DDS, one domain per module.

Importing it makes the ros_ws packages importable without sourcing ROS (as the venv's
``wm_ros_ws.pth`` does after bootstrap).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "ros_ws" / "src"
for _pkg in sorted(SRC.glob("wm_*")):
    if str(_pkg) not in sys.path:
        sys.path.insert(0, str(_pkg))

SHIPPED_MODEL = ROOT / "models" / "default" / "model.pt"


_used: dict[int, int] = {}


def fresh_domain(base: int) -> int:
    """A ROS_DOMAIN_ID for the next test of a module: ``base`` + 0..9 in turn, so a test never
    meets the endpoints of the one before it (DDS forgets a closed participant only lazily)."""
    n = _used.get(base, 0)
    _used[base] = n + 1
    return base + n % 10


class Ros:
    """One rclpy context with an executor; nodes added to it spin together."""

    def __init__(self, domain: int):
        import rclpy
        from wm_bringup.executor import ThreadedExecutor

        os.environ["ROS_DOMAIN_ID"] = str(domain)
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.executor = ThreadedExecutor(num_threads=4, context=self.context)
        self.nodes: list = []
        self.endpoints: list = []
        self.probe = self.add(rclpy.create_node("wm_test_probe", context=self.context))

    def add(self, node):
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.02)

    def spin_until(self, pred: Callable[[], bool], timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return True
            self.executor.spin_once(timeout_sec=0.02)
        return pred()

    def collect(self, msg_type, topic: str, qos) -> list:
        """Subscribe the probe node; returns the list messages are appended to."""
        got: list = []
        self.endpoints.append(self.probe.create_subscription(msg_type, topic, got.append, qos))
        return got

    def publisher(self, msg_type, topic: str, qos):
        pub = self.probe.create_publisher(msg_type, topic, qos)
        self.endpoints.append(pub)
        return pub

    def linked(self) -> bool:
        """Every probe publisher and subscription is matched with a peer (discovery done:
        a message sent before the match would be lost)."""
        return all(
            (
                e.get_subscription_count()
                if hasattr(e, "get_subscription_count")
                else e.get_publisher_count()
            )
            > 0
            for e in self.endpoints
        )

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=5.0)
        for node in reversed(self.nodes):
            if hasattr(node, "stop"):
                node.stop()
        for node in self.nodes:
            node.destroy_node()
        self.context.try_shutdown()
