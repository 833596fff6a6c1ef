"""``wm_chaos_relay``: a node that sits in the middle of the stack's input topics and breaks them
on demand (``wm chaos``, :mod:`wm_bringup.chaos`).

The chaos run remaps the brain nodes' inputs onto ``/chaos/...`` (:data:`RELAYED`); this node
subscribes to the real topic and republishes each message there, unchanged until the driver
turns a fault on with a JSON command on ``/chaos/control`` (std_msgs/String)::

    {"id": 7, "topic": "image", "fault": "drop", "on": true, "arg": 0.0}

It applies the change, then answers on ``/chaos/events`` with ``{"id": 7, "t_ns": ...}``: the
wall time (``time.time_ns``) from which the fault is in effect; once the first message on that
topic has been affected (dropped, delayed, changed), ``{"id": 7, "first_ns": ...}`` follows, the
wall time of that message's arrival: when a consumer could first have noticed. Faults per
topic:

- ``image`` (``/camera/image_raw`` -> perception): ``drop``; ``wrong_size`` (width grown, data
  kept), ``wrong_encoding``, ``black``, ``truncated`` (half the data); ``stale`` (stamp ``arg``
  s older); ``reorder`` (each pair of frames sent in reverse order);
- ``latent`` (``/wm/latent`` -> planner): ``delay`` (each latent ``arg`` s late);
- ``joint_states`` (``/joint_states`` -> planner, safety): ``nan`` (positions NaN, inf in
  turn);
- ``clock`` (``/clock`` -> perception, planner, safety): ``offset`` (``arg`` s added: the
  clock jumps, and jumps back when the fault is turned off).

Several faults (on different topics) may be on at once. The relay runs in its own process,
so the driver's work never delays the stack's inputs.
"""

from __future__ import annotations

import heapq
import itertools
import json
import time
from typing import Any

from rclpy.node import Node
from rclpy.subscription import MessageInfo
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from wm_bringup.msgs import publisher_of
from wm_bringup.nodekit import RELIABLE_QOS, SENSOR_QOS, run_plain_node

PREFIX = "/chaos"
RELAYED = {
    "image": ("/camera/image_raw", Image, SENSOR_QOS),
    "latent": ("/wm/latent", Image, SENSOR_QOS),
    "joint_states": ("/joint_states", JointState, RELIABLE_QOS),
    "clock": ("/clock", Clock, RELIABLE_QOS),
}
"""name -> (real topic, type, QoS); the consumers read ``PREFIX + real topic``."""
FAULTS = {
    "image": ("drop", "wrong_size", "wrong_encoding", "black", "truncated", "stale", "reorder"),
    "latent": ("delay",),
    "joint_states": ("nan",),
    "clock": ("offset",),
}


def shift(stamp: Any, seconds: float) -> None:
    """Move a builtin_interfaces/Time by ``seconds`` (not below zero), in place."""
    ns = max(0, stamp.sec * 1_000_000_000 + stamp.nanosec + int(round(seconds * 1e9)))
    stamp.sec, stamp.nanosec = ns // 1_000_000_000, ns % 1_000_000_000


class ChaosRelay(Node):
    def __init__(self) -> None:
        super().__init__("wm_chaos_relay")
        self.active: dict[str, tuple[str, float]] = {}  # topic -> (fault, arg)
        self.pending: dict[str, Any] = {}  # topic -> id of a fault whose first message is due
        self.held: dict[str, Any] = {}  # reorder: the frame waiting for its successor
        self.delayed: list[tuple[int, int, str, Any]] = []  # heap of (due ns, n, topic, msg)
        self.count = itertools.count()
        self.flip = 0
        self.pubs = {}
        self.sources: dict[str, bytes | None] = {}  # topic -> its upstream publisher's gid
        for name, (topic, kind, qos) in RELAYED.items():
            self.pubs[name] = self.create_publisher(kind, PREFIX + topic, qos)
            self.create_subscription(kind, topic, lambda m, i, n=name: self._relay(n, m, i), qos)
        self.events = self.create_publisher(String, f"{PREFIX}/events", RELIABLE_QOS)
        self.create_subscription(String, f"{PREFIX}/control", self._on_control, RELIABLE_QOS)
        self.flush_timer = None  # 5 ms, only while messages are delayed (it costs CPU)

    def _on_control(self, msg: String) -> None:
        try:
            cmd = json.loads(msg.data)
            topic, fault = cmd["topic"], cmd["fault"]
            if fault not in FAULTS.get(topic, ()):
                raise ValueError(f"no fault {fault!r} on topic {topic!r}")
        except (ValueError, KeyError, TypeError) as exc:
            self.get_logger().error(f"ignored chaos command {msg.data[:80]!r}: {exc}")
            return
        if cmd.get("on", True):
            self.active[topic] = (fault, float(cmd.get("arg", 0.0)))
            self.pending[topic] = cmd.get("id")
            if fault == "delay" and self.flush_timer is None:
                self.flush_timer = self.create_timer(0.005, self._flush)
        else:
            self.active.pop(topic, None)
            self.pending.pop(topic, None)
            held = self.held.pop(topic, None)
            if held is not None:
                self.pubs[topic].publish(held)
        self.events.publish(String(data=json.dumps({"id": cmd.get("id"), "t_ns": time.time_ns()})))
        self.get_logger().info(f"{'on' if cmd.get('on', True) else 'off'}: {topic} {fault}")

    def _relay(self, topic: str, msg: Any, info: MessageInfo) -> None:
        fault, arg = self.active.get(topic, ("", 0.0))
        source = publisher_of(info)
        if topic in self.sources and source != self.sources[topic]:
            # the upstream publisher restarted: so does ours, so that subscribers that tell a
            # restarted driver by its publisher (the safety node) see it through the relay
            old, (name, kind, qos) = self.pubs[topic], RELAYED[topic]
            self.pubs[topic] = self.create_publisher(kind, PREFIX + name, qos)
            self.destroy_publisher(old)
            # what the old upstream sent and we still hold back is not the new one's
            self.held.pop(topic, None)
            self.delayed = [d for d in self.delayed if d[2] != topic]
            heapq.heapify(self.delayed)
            self.get_logger().info(f"{name}: a new upstream publisher; relaying from a new one")
            self._report_matches(topic)
        self.sources[topic] = source
        pub = self.pubs[topic]
        if fault and topic in self.pending:
            first = {"id": self.pending.pop(topic), "first_ns": time.time_ns()}
            self.events.publish(String(data=json.dumps(first)))
        if fault == "drop":
            return
        if fault == "delay":
            due = time.monotonic_ns() + int(arg * 1e9)
            heapq.heappush(self.delayed, (due, next(self.count), topic, msg))
            return
        if fault == "reorder":
            held = self.held.pop(topic, None)
            if held is None:
                self.held[topic] = msg
            else:
                pub.publish(msg)
                pub.publish(held)
            return
        if fault == "wrong_size":
            msg.width += 16  # the data no longer fits the declared geometry
        elif fault == "wrong_encoding":
            msg.encoding = "yuv422"
        elif fault == "black":
            msg.data = bytes(len(msg.data))
        elif fault == "truncated":
            msg.data = bytes(msg.data[: len(msg.data) // 2])
        elif fault == "stale":
            shift(msg.header.stamp, -arg)
        elif fault == "nan":
            self.flip ^= 1
            msg.position = [float("nan") if self.flip else float("inf")] * len(msg.position)
        elif fault == "offset":
            shift(msg.clock, arg)
        pub.publish(msg)

    def _report_matches(self, topic: str) -> None:
        """Log, 1 s and 5 s after our publisher was recreated, how many subscribers it has:
        whether the nodes behind the relay found the new one (wm chaos' flow after a restart)."""
        pub, ticks = self.pubs[topic], []

        def report() -> None:
            ticks.append(1)
            if pub is self.pubs[topic]:  # not recreated again meanwhile
                n = pub.get_subscription_count()
                self.get_logger().info(f"{pub.topic_name}: {n} subscriber(s) {len(ticks)} s on")
            if len(ticks) >= 5 or pub is not self.pubs[topic]:
                self.destroy_timer(timer)

        timer = self.create_timer(1.0, report)

    def _flush(self) -> None:
        now = time.monotonic_ns()
        while self.delayed and self.delayed[0][0] <= now:
            _, _, topic, msg = heapq.heappop(self.delayed)
            self.pubs[topic].publish(msg)
        delaying = any(f == "delay" for f, _ in self.active.values())
        if not self.delayed and not delaying and self.flush_timer is not None:
            self.destroy_timer(self.flush_timer)
            self.flush_timer = None


def main(args: list[str] | None = None) -> None:
    run_plain_node(ChaosRelay, args, freeze=True)


if __name__ == "__main__":
    main()
