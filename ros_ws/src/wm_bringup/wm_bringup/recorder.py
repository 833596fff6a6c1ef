"""``wm record``: the stack's topics into a rosbag2 bag with MCAP storage, written by ``rosbags``.

The bag is a standard rosbag2 directory (``metadata.yaml`` + ``<name>.mcap``, format version 9)
with the ROS 2 message definitions embedded from the same ``rosbags`` typestore the importer
(``wm_core.data.bag_import``) reads with. Foxglove opens the ``.mcap``, ``ros2 bag info/play``
open the directory, and ``wm import-bag`` turns it into training shards.

How it records:

- **Subscriptions are raw** (``raw=True``): the callback gets the CDR bytes the middleware
  received, and they are written as they are, never deserialised and serialised again.
- **Types.** Topics of the stack (:data:`KNOWN_TYPES`) are subscribed at once, so nothing is
  missed while discovery runs; any other requested topic is subscribed when it shows up in the
  ROS graph, with the type the graph reports. A topic whose type is not in the typestore, or
  whose graph type disagrees with the known one, is not recorded and a warning says so.
- **QoS.** Sensor data (images, camera info) is subscribed best effort, as its publishers offer
  it; everything else reliable, switching to best effort if a publisher offers only that (a
  reliable subscription would never match it), and transient local when every publisher offers
  it (latched topics). The publishers' offered QoS goes into the bag, for ``ros2 bag play``.
- **Time.** Each message is stamped with its receive time: the wall clock at start plus the
  monotonic time since, in ns, so stamps never go backwards while the bag is written.
- **No silent loss.** Per topic it counts messages received and written, and the gaps in each
  publisher's sequence numbers (messages the middleware never delivered: a best-effort drop or
  a queue overflow). A write that fails stops the recording; the bag is still closed.
"""

from __future__ import annotations

import importlib
import os
import signal
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rclpy.subscription import MessageInfo, Subscription
from rclpy.topic_endpoint_info import TopicEndpointInfo
from rosbags.interfaces import (
    Connection,
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError
from rosbags.typesys import Stores, get_typestore

from wm_bringup.msgs import SUCTION_HOLDING_TOPIC
from wm_bringup.stack import (
    ARM_COMMAND_TOPIC,
    REAL_ARM_COMMAND_TOPIC,
    REAL_CAMERA_INFO_TOPIC,
    REAL_IMAGE_TOPIC,
)
from wm_core.config import ConfigError, check_range

BAG_VERSION = 9
"""rosbag2 metadata version (what Jazzy and Kilted write)."""
BAG_STORE = Stores.ROS2_JAZZY
"""The typestore of the message definitions written into the bag (the importer reads with the
same one; the standard messages the stack uses are identical in Kilted)."""

STACK_TOPICS: dict[str, str] = {
    "/camera/image_raw": "sensor_msgs/msg/Image",
    "/camera/camera_info": "sensor_msgs/msg/CameraInfo",
    "/joint_states": "sensor_msgs/msg/JointState",
    "/wm/latent": "sensor_msgs/msg/Image",
    "/wm/plan_cmd": "trajectory_msgs/msg/JointTrajectory",
    ARM_COMMAND_TOPIC: "trajectory_msgs/msg/JointTrajectory",
    "/suction/command": "std_msgs/msg/Bool",
    SUCTION_HOLDING_TOPIC: "std_msgs/msg/Bool",
    "/wm/estop": "std_msgs/msg/Bool",
    "/wm/surprise": "std_msgs/msg/Float32",
    "/wm/plan_markers": "visualization_msgs/msg/MarkerArray",
    "/wm/detections": "visualization_msgs/msg/MarkerArray",
    "/wm/safety/verdict": "std_msgs/msg/Header",
    "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray",
    "/clock": "rosgraph_msgs/msg/Clock",
    "/wm/sim/episode": "std_msgs/msg/String",
    "/wm/sim/reset": "std_msgs/msg/Int64",
}
"""What the stack publishes or listens to (topic -> type): the default topics of ``wm record``."""
KNOWN_TYPES: dict[str, str] = STACK_TOPICS | {
    REAL_IMAGE_TOPIC: "sensor_msgs/msg/Image",
    REAL_CAMERA_INFO_TOPIC: "sensor_msgs/msg/CameraInfo",
    REAL_ARM_COMMAND_TOPIC: "trajectory_msgs/msg/JointTrajectory",
}
"""Topics subscribed without waiting for discovery: the stack's, plus the ``real`` profile's."""
SENSOR_TYPES = frozenset(
    {
        "sensor_msgs/msg/Image",
        "sensor_msgs/msg/CompressedImage",
        "sensor_msgs/msg/CameraInfo",
        "sensor_msgs/msg/PointCloud2",
        "sensor_msgs/msg/LaserScan",
    }
)
"""Types always subscribed with sensor-data QoS (best effort)."""


class RecordError(RuntimeError):
    """The recording cannot start or could not be closed; the message says which path and why."""


@dataclass(frozen=True)
class RecorderConfig:
    """What to record, where, and for how long."""

    out: Path
    """The bag directory to create (it must not exist, or be an empty directory)."""
    topics: tuple[str, ...] = tuple(STACK_TOPICS)
    """Absolute topic names to record."""
    seconds: float | None = None
    """Stop after this long (wall clock, s); None: until Ctrl-C / SIGTERM."""
    queue_depth: int = 100
    """Subscription queue depth (messages per topic buffered while the writer is busy)."""
    discovery_period_s: float = 0.5
    """How often the ROS graph is checked for requested topics and their publishers (s)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        if not self.topics:
            raise ConfigError("topics=() must name at least one topic")
        for topic in self.topics:
            if not isinstance(topic, str) or not topic.startswith("/") or topic.endswith("/"):
                raise ConfigError(f"topic {topic!r} must be an absolute name such as /joint_states")
        duplicates = sorted({t for t in self.topics if self.topics.count(t) > 1})
        if duplicates:
            raise ConfigError(f"topics {duplicates} are given more than once")
        if self.seconds is not None:
            check_range("seconds", self.seconds, 0.01, 1e7)
        check_range("queue_depth", self.queue_depth, 1, 100_000, integer=True)
        check_range("discovery_period_s", self.discovery_period_s, 0.05, 60.0)


@dataclass
class TopicStats:
    """Counters of one requested topic."""

    msgtype: str | None = None
    """The type it is subscribed with (None: not subscribed, see ``note``)."""
    best_effort: bool = False
    received: int = 0
    written: int = 0
    missed: int = 0
    """Gaps in the publishers' sequence numbers: messages sent that never arrived."""
    note: str = ""
    """Why the topic is not recorded (empty when it is, or when it was never seen)."""


@dataclass(frozen=True)
class RecordSummary:
    """What a recording holds. ``ok``: every message received was written (``missed`` counts
    what the middleware never delivered, e.g. best-effort drops, and is reported apart)."""

    bag: Path
    duration_s: float
    topics: dict[str, TopicStats] = field(default_factory=dict)
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None and all(s.written == s.received for s in self.topics.values())

    @property
    def missed(self) -> int:
        return sum(s.missed for s in self.topics.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "bag": str(self.bag),
            "storage": "mcap",
            "duration_s": round(self.duration_s, 3),
            "ok": self.ok,
            "failure": self.failure,
            "topics": {
                t: {
                    "type": s.msgtype,
                    "qos": None if s.msgtype is None else _qos_label(s.best_effort),
                    "received": s.received,
                    "written": s.written,
                    "missed": s.missed,
                    "note": s.note,
                }
                for t, s in self.topics.items()
            },
        }


def _qos_label(best_effort: bool) -> str:
    return "best_effort" if best_effort else "reliable"


def check_out(out: Path) -> None:
    """Raise :class:`RecordError` unless a bag can be created at ``out``: it must not exist (or
    be an empty directory) and its nearest existing parent must be a writable directory."""
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise RecordError(f"{out} exists and is not a directory")
        if (out / "metadata.yaml").exists():
            raise RecordError(f"{out} already holds a rosbag2 bag; record into a new directory")
        if any(out.iterdir()):
            raise RecordError(f"{out} exists and is not empty; record into a new directory")
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise RecordError(f"cannot create {out}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RecordError(f"cannot create {out}: {parent} is not writable")


def open_bag(out: Path) -> Writer:
    """A rosbag2 writer with MCAP storage, opened at ``out`` (see :func:`check_out`)."""
    out = Path(out)
    check_out(out)
    try:
        if out.is_dir():
            out.rmdir()  # empty (checked): rosbags creates the bag directory itself
        writer = Writer(out, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP)
        writer.open()
    except (OSError, WriterError) as exc:
        raise RecordError(f"cannot create the bag {out}: {exc}") from exc
    return writer


def subscription_qos(msgtype: str, offered: Sequence[QoSProfile], depth: int) -> QoSProfile:
    """The QoS to record ``msgtype`` with, given the publishers' offered QoS (maybe none yet)."""
    best_effort = msgtype in SENSOR_TYPES or any(
        q.reliability == ReliabilityPolicy.BEST_EFFORT for q in offered
    )
    latched = bool(offered) and all(
        q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in offered
    )
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def _bag_time(d: Duration) -> QosTime:
    return QosTime(d.nanoseconds // 1_000_000_000, d.nanoseconds % 1_000_000_000)


def bag_qos(q: QoSProfile) -> Qos:
    """An rclpy QoS profile as rosbags writes it into ``offered_qos_profiles``."""
    return Qos(
        history=QosHistory(int(q.history)),
        depth=int(q.depth),
        reliability=QosReliability(int(q.reliability)),
        durability=QosDurability(int(q.durability)),
        deadline=_bag_time(q.deadline),
        lifespan=_bag_time(q.lifespan),
        liveliness=QosLiveliness(int(q.liveliness)),
        liveliness_lease_duration=_bag_time(q.liveliness_lease_duration),
        avoid_ros_namespace_conventions=bool(q.avoid_ros_namespace_conventions),
    )


def message_class(msgtype: str) -> type:
    """``pkg/msg/Name`` -> the Python message class (ImportError/AttributeError if absent)."""
    pkg, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)


class BagRecorder(Node):
    """Subscribes to the configured topics and writes every message into one MCAP bag.

    All callbacks are in the node's default (mutually exclusive) callback group, and the writer
    is also guarded by a lock, so the node may spin in any executor. Call :meth:`close` once
    spinning has stopped; it writes the bag's index and ``metadata.yaml``."""

    def __init__(
        self, cfg: RecorderConfig, *, context: Context | None = None, name: str = "wm_recorder"
    ) -> None:
        super().__init__(name, context=context)
        self.cfg = cfg
        self.typestore = get_typestore(BAG_STORE)
        self.stats = {t: TopicStats() for t in cfg.topics}
        self.failure: str | None = None
        self._subs: dict[str, Subscription] = {}
        self._conns: dict[str, Connection] = {}
        self._last_seq: dict[tuple[str, bytes], int] = {}
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._summary: RecordSummary | None = None
        self.writer = open_bag(cfg.out)
        self._t0_wall, self._t0_mono = time.time_ns(), time.monotonic_ns()
        try:
            for topic in cfg.topics:
                if topic in KNOWN_TYPES:
                    self._subscribe(topic, KNOWN_TYPES[topic], ())
            self._discover()
            self._timer = self.create_timer(cfg.discovery_period_s, self._discover)
        except BaseException:
            self.writer.abort()
            raise
        self.get_logger().info(f"recording {len(cfg.topics)} topic(s) into {cfg.out}")

    # ------------------------------------------------------------------ subscriptions
    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.get_logger().warning(text)

    def _offered(self, topic: str) -> list[TopicEndpointInfo]:
        return list(self.get_publishers_info_by_topic(topic))

    def _subscribe(self, topic: str, msgtype: str, offered: Sequence[QoSProfile]) -> None:
        st = self.stats[topic]
        if msgtype not in self.typestore.types:
            st.note = f"type {msgtype} is not in the {BAG_STORE.value} typestore"
            self._warn_once(topic, f"{topic}: not recorded: {st.note}")
            return
        try:
            cls = message_class(msgtype)
        except (ImportError, AttributeError, ValueError) as exc:
            st.note = f"no Python message package for {msgtype} ({exc})"
            self._warn_once(topic, f"{topic}: not recorded: {st.note}")
            return
        qos = subscription_qos(msgtype, offered, self.cfg.queue_depth)
        old = self._subs.pop(topic, None)
        if old is not None:
            self.destroy_subscription(old)
        self._subs[topic] = self.create_subscription(
            cls, topic, partial(self._on_message, topic), qos, raw=True
        )
        st.msgtype = msgtype
        st.best_effort = qos.reliability == ReliabilityPolicy.BEST_EFFORT
        st.note = ""
        self.get_logger().debug(f"{topic}: {msgtype}, {_qos_label(st.best_effort)}")

    def _discover(self) -> None:
        """Subscribe requested topics that appeared in the graph; adapt to their publishers."""
        graph = dict(self.get_topic_names_and_types())
        for topic, st in self.stats.items():
            types = graph.get(topic)
            if not types:
                continue
            if st.msgtype is None:
                if st.note:
                    continue  # refused already (type unknown); the warning said why
                if len(types) > 1:
                    self._warn_once(topic, f"{topic} has several types {types}; using {types[0]}")
                offered = [p.qos_profile for p in self._offered(topic)]
                self._subscribe(topic, types[0], offered)
            elif st.msgtype not in types:
                self._warn_once(
                    f"{topic}:type",
                    f"{topic} is published as {types}, not {st.msgtype}: those are not recorded",
                )
            elif not st.best_effort:
                offered = [p.qos_profile for p in self._offered(topic)]
                if any(q.reliability == ReliabilityPolicy.BEST_EFFORT for q in offered):
                    self.get_logger().info(f"{topic}: a publisher is best effort; so is the bag's")
                    self._subscribe(topic, st.msgtype, offered)

    # ------------------------------------------------------------------ writing
    def _connection(self, topic: str) -> Connection:
        """The bag's connection for ``topic`` (created on its first message, with the QoS its
        publishers offer at that moment)."""
        conn = self._conns.get(topic)
        if conn is not None:
            return conn
        msgtype = self.stats[topic].msgtype
        assert msgtype is not None  # only subscribed topics get messages
        publishers = self._offered(topic) if self.context.ok() else []
        ours = self.typestore.hash_rihs01(msgtype)
        for p in publishers:
            theirs = str(p.topic_type_hash)
            if p.topic_type == msgtype and theirs.startswith("RIHS01_") and theirs != ours:
                self._warn_once(
                    f"{topic}:hash",
                    f"{topic}: {p.node_name} publishes {msgtype} with hash {theirs}, but the "
                    f"bag's definition ({BAG_STORE.value}) is {ours}; readers may misdecode it",
                )
        conn = self.writer.add_connection(
            topic,
            msgtype,
            typestore=self.typestore,
            offered_qos_profiles=[bag_qos(p.qos_profile) for p in publishers],
        )
        self._conns[topic] = conn
        return conn

    def _count_gaps(self, topic: str, info: MessageInfo) -> None:
        seq = info.get("publication_sequence_number")
        gid = info.get("publisher_gid")
        if seq is None or not gid:
            return
        key = (topic, bytes(gid["data"]))
        last = self._last_seq.get(key)
        if last is not None and seq > last + 1:
            self.stats[topic].missed += seq - last - 1
            self._warn_once(
                f"{topic}:missed", f"{topic}: messages were sent that never arrived (counted)"
            )
        self._last_seq[key] = seq

    def _on_message(self, topic: str, data: bytes, info: MessageInfo) -> None:
        with self._lock:
            if self._closed:
                return  # after the end of the recording
            stamp = self._t0_wall + (time.monotonic_ns() - self._t0_mono)
            st = self.stats[topic]
            st.received += 1
            self._count_gaps(topic, info)
            if self.failure is not None:
                return
            try:
                self.writer.write(self._connection(topic), stamp, data)
            except (OSError, WriterError) as exc:
                self.failure = f"writing {topic} to {self.cfg.out} failed: {exc}"
                self.get_logger().error(f"{self.failure}; stopping the recording")
                return
            st.written += 1

    # ------------------------------------------------------------------ end
    def close(self) -> RecordSummary:
        """Stop recording and finish the bag (index and ``metadata.yaml``); idempotent.

        Raises :class:`RecordError` if the bag cannot be finished (the disk is full...)."""
        with self._lock:
            if self._summary is not None:
                return self._summary
            self._closed = True
            duration = (time.monotonic_ns() - self._t0_mono) * 1e-9
            try:
                self.writer.close()
            except (OSError, WriterError) as exc:
                self.writer.abort()
                raise RecordError(f"could not finish the bag {self.cfg.out}: {exc}") from exc
            self._summary = RecordSummary(self.cfg.out, duration, self.stats, self.failure)
        self._log_summary(self._summary)
        return self._summary

    def _log_summary(self, s: RecordSummary) -> None:
        log = self.get_logger()
        written = sum(t.written for t in s.topics.values())
        recorded = sum(1 for t in s.topics.values() if t.written)
        log.info(
            f"closed {s.bag}: {written} messages on {recorded} topic(s) in {s.duration_s:.1f} s"
        )
        for topic, t in s.topics.items():
            if t.msgtype is None:
                log.warning(f"{topic}: not recorded ({t.note or 'never seen in the ROS graph'})")
            elif t.written != t.received or t.missed:
                log.warning(
                    f"{topic}: {t.received} received, {t.written} written, {t.missed} missed"
                )
        if s.failure:
            log.error(s.failure)


DRAIN_S = 0.3
"""After a stop, how long the recorder still takes the messages DDS has delivered."""


def record(cfg: RecorderConfig, *, handle_signals: bool = True) -> RecordSummary:
    """Record until ``cfg.seconds`` pass, Ctrl-C / SIGTERM (with ``handle_signals``; main thread
    only), or a write fails; the bag is closed in every case. Raises :class:`RecordError` when
    the bag cannot be created or finished."""
    check_out(cfg.out)  # before any ROS set-up: a bad path is a quick, clear error
    stop = threading.Event()
    context = Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    old: dict[int, Any] = {}
    if handle_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, lambda signum, frame: stop.set())
    node: BagRecorder | None = None
    executor: SingleThreadedExecutor | None = None
    try:
        node = BagRecorder(cfg, context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = None if cfg.seconds is None else time.monotonic() + cfg.seconds
        while not stop.is_set() and node.failure is None and context.ok():
            if deadline is not None and time.monotonic() >= deadline:
                break
            executor.spin_once(timeout_sec=0.1)
        if node.failure is None and context.ok():
            # what DDS already delivered gets written too: a stop loses nothing received
            drain_end = time.monotonic() + DRAIN_S
            while time.monotonic() < drain_end:
                executor.spin_once(timeout_sec=0.01)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        try:
            summary = node.close() if node is not None else None
        finally:
            if executor is not None:
                executor.shutdown(timeout_sec=2.0)
            if node is not None:
                node.destroy_node()
            context.try_shutdown()
    assert summary is not None
    return summary


def topic_table(summary: RecordSummary) -> Iterable[str]:
    """Lines of a per-topic table (topic, type, QoS, written, missed) for a human summary."""
    width = max(len(t) for t in summary.topics)
    yield f"{'topic':<{width}}  {'type':<38} {'qos':<11} {'written':>8} {'missed':>7}"
    for topic, s in summary.topics.items():
        if s.msgtype is None:
            yield f"{topic:<{width}}  not recorded: {s.note or 'never seen in the ROS graph'}"
            continue
        line = f"{topic:<{width}}  {s.msgtype:<38} {_qos_label(s.best_effort):<11} "
        line += f"{s.written:>8} {s.missed:>7}"
        if s.written != s.received:
            line += f"  ({s.received - s.written} received but not written)"
        yield line
