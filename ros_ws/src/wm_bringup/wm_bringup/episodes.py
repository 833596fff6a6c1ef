"""Table-clearing episodes through the running ROS 2 stack (``wm up sim --episodes N``).

The stack runs in child processes (:func:`wm_bringup.runner.launch_children`: one process for
``inprocess``, one per node for ``processes``); this driver stays outside it, in its own rclpy
context, so it never competes with the nodes for a GIL. Per episode it:

1. deactivates the planner (``/wm_planner/change_state``), resets the sim to the episode's seed
   (``/wm/sim/reset``) and activates the planner again, which starts a new task;
2. waits for the episode to end. The sim node decides that from its own state (table empty,
   time limit) and publishes the scores on ``/wm/sim/episode``; when the planner reports that it
   is done (its ``/diagnostics``), the driver ends the episode (``/wm/sim/end_episode``), as
   ``wm eval`` stops when the policy is done. The planner never sees the scores;
3. takes the safety filter's counts for the episode from ``wm_safety``'s ``/diagnostics``
   (the difference of its cumulative counters before and after).

**End-to-end latency** is measured on the wall clock, without trusting any node's timing: the
sim publishes ``/clock`` and then the camera image of each step, all with the same (simulated)
stamp, so the DDS source timestamp of ``/clock`` is when that frame went out. The safety node
publishes, right after each arm command it makes from a planner command, that command's stamp
(the source image's) on ``/wm/safety/command_source``; its DDS source timestamp is when the
command for that frame went to the arm. Latency = the second minus the first, for the same
stamp. Frames published minus frames encoded by perception (``/wm/latent`` carries the image
stamp) are the dropped frames; frames that perception encoded but the planner skipped (it takes
the newest latent when it is free) are counted apart, as frames without a command. The achieved
control rate is frame-linked commands per second.

:func:`run_episodes` writes ``report.json`` with :func:`wm_core.eval.runner.build_report` (the
``wm eval`` report) plus the stack figures, and ``episode0.mp4``: ``annotated`` (default) from
what the stack published about each step of episode 0 (:mod:`wm_bringup.episode_view`), ``raw``
the camera frames, ``none`` nothing; and with ``rerun`` the same records as an .rrd file.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Empty, Header, Int64, String
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from wm_bringup.episode_view import ViewLog, build_records
from wm_bringup.msgs import arm_joint_names, joint_state_arrays
from wm_bringup.nodekit import RELIABLE_QOS
from wm_bringup.runner import ProcessStack, launch_children
from wm_bringup.vizmsgs import parse_cost_values, parse_detection_markers, parse_plan_markers

log = logging.getLogger(__name__)

PLANNER = "wm_planner"
SAFETY = "wm_safety"
LATENCY_TARGET_MS = 100.0
RATE_TARGET_HZ = 10.0
RATE_TOLERANCE = 0.01
"""The camera is the sim's 10 Hz steady timer, whose measured rate is a hair under 10 Hz; a
stack that commands every frame meets the rate target within this fraction."""
DRIVER_OVERRIDES = {
    SAFETY: {"diagnostics_period_s": 0.25},
    PLANNER: {"diagnostics_period_s": 0.5},
}
"""Faster diagnostics from the two nodes the driver reads counters from."""
STATUS_HISTORY = 256
"""Episode statuses the probe keeps (the sim sends one per second and at each episode's start
and end): enough to find an episode's start and end, bounded for a long run (``wm soak``)."""
LATENCY_DEFINITION = (
    "wall clock: a camera frame published by wm_sim (DDS source timestamp of /clock for that "
    "step) -> wm_safety's arm command for that frame (DDS source timestamp of "
    "/wm/safety/command_source, published right after the command)"
)


class DriverError(RuntimeError):
    """The stack did not do what an episode needs (a node exited, a step timed out)."""


def stamp_ns(t: Any) -> int:
    return int(t.sec) * 1_000_000_000 + int(t.nanosec)


def sim_ns(seconds: float) -> int:
    """A simulated time in the episode status (s) -> the stamp (ns) it was made from."""
    return int(round(seconds * 1e9))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


@dataclass
class Window:
    """Frames with simulated stamps in ``(start_ns, end_ns]``."""

    start_ns: int
    end_ns: int


class StackProbe:
    """The driver's ROS side: one node in its own context, spun in a background thread.

    Everything it receives is stored under ``lock``; the main thread reads it."""

    def __init__(
        self,
        arm_topic: str = "/arm_controller/joint_trajectory",
        image_topic: str = "/camera/image_raw",
    ) -> None:
        self.arm_topic, self.image_topic = arm_topic, image_topic
        """Where the safety node's arm commands and the camera's images go (the real profile
        remaps both onto its device topics)."""
        self.lock = threading.Lock()
        self.frame_wall: dict[int, int] = {}
        """sim stamp (ns) -> wall time (ns) the sim published that step's frame."""
        self.latest_ns = 0
        self.encoded: set[int] = set()
        self.sources: list[tuple[int, int]] = []
        """(source image stamp, wall ns the safety node sent the command) per arm command."""
        self.arm_commands = 0
        self.frames_total = 0
        """Camera steps (/clock) received since the start (a counter that is never pruned)."""
        self.sources_total = 0
        """Frame-linked arm commands (/wm/safety/command_source) received since the start."""
        self.statuses: deque[dict] = deque(maxlen=STATUS_HISTORY)
        self.diag: dict[str, tuple[int, dict[str, str]]] = {}
        self.images: deque[tuple[int, np.ndarray]] | None = None
        self.view: ViewLog | None = None
        """What the stack publishes about each step, while recording with ``view``."""
        self._view_subs: list[Any] = []
        self._joint_names = arm_joint_names()

        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        node = self.node = rclpy.create_node("wm_episode_driver", context=self.context)
        # Deep queues: a burst must not cost the driver a sample (that would read as a drop).
        keep = HistoryPolicy.KEEP_LAST
        deep = QoSProfile(history=keep, depth=200, reliability=ReliabilityPolicy.RELIABLE)
        sensor = QoSProfile(history=keep, depth=50, reliability=ReliabilityPolicy.BEST_EFFORT)
        self._sensor_qos = sensor
        self._image_sub = None
        self.subs = [
            node.create_subscription(Clock, "/clock", self._on_clock, deep),
            node.create_subscription(Image, "/wm/latent", self._on_latent, sensor),
            node.create_subscription(Header, "/wm/safety/command_source", self._on_source, deep),
            node.create_subscription(JointTrajectory, arm_topic, self._on_arm, deep),
            node.create_subscription(String, "/wm/sim/episode", self._on_status, deep),
            node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, deep),
        ]
        self.reset_pub = node.create_publisher(Int64, "/wm/sim/reset", RELIABLE_QOS)
        self.end_pub = node.create_publisher(Empty, "/wm/sim/end_episode", RELIABLE_QOS)
        self.change_state = node.create_client(ChangeState, f"/{PLANNER}/change_state")
        self.get_state = node.create_client(GetState, f"/{PLANNER}/get_state")
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(node)
        self._stop = threading.Event()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], threading.Event, list]] = (
            queue.SimpleQueue()
        )
        self.spin_error: BaseException | None = None
        """What ended the spin thread early (then no reply or message reaches the driver)."""
        self.thread = threading.Thread(target=self._spin, name="wm_episode_driver", daemon=True)
        self.thread.start()

    # ------------------------------------------------------------------ callbacks
    def _spin(self) -> None:
        try:
            while not self._stop.is_set() and self.context.ok():
                self.executor.spin_once(timeout_sec=0.05)
                while not self._jobs.empty():
                    job, done, failed = self._jobs.get_nowait()
                    try:
                        job()
                    except Exception as exc:  # the caller's to raise, not the spin thread's
                        failed.append(exc)
                    done.set()
        except ExternalShutdownException:
            pass
        except BaseException as exc:
            self.spin_error = exc
            log.error("the episode driver's spin thread stopped: %s", exc)
            raise

    def _between_spins(self, job: Callable[[], Any], timeout: float = 10.0) -> None:
        """Run ``job`` (create or destroy subscriptions) on the spin thread between two
        ``spin_once`` calls. Destroyed from another thread while the executor builds its wait
        set, a subscription's event handler raises ``InvalidHandle`` there and ends the spin
        thread (seen in a fresh-clone run: the planner's deactivate answer was then never
        taken, "did not answer in 30 s"; a stress test of start/stop cycles against 2 kHz of
        traffic killed it after 72 cycles)."""
        if not self.thread.is_alive() or threading.current_thread() is self.thread:
            job()
            return
        done, failed = threading.Event(), []
        self._jobs.put((job, done, failed))
        if not done.wait(timeout):
            raise DriverError(
                self._spin_trouble(f"the spin thread did not run a job in {timeout} s")
            )
        if failed:
            raise failed[0]

    def _spin_trouble(self, what: str) -> str:
        if self.spin_error is not None:
            return f"{what}: the driver's spin thread stopped ({self.spin_error!r})"
        return what

    def _on_clock(self, msg: Clock, info: dict) -> None:
        s = stamp_ns(msg.clock)
        with self.lock:
            self.frame_wall.setdefault(s, int(info["source_timestamp"]))
            self.frames_total += 1
            self.latest_ns = max(self.latest_ns, s)

    def _on_latent(self, msg: Image) -> None:
        with self.lock:
            self.encoded.add(stamp_ns(msg.header.stamp))

    def _on_source(self, msg: Header, info: dict) -> None:
        with self.lock:
            self.sources.append((stamp_ns(msg.stamp), int(info["source_timestamp"])))
            self.sources_total += 1

    def _on_arm(self, msg: JointTrajectory) -> None:
        with self.lock:
            self.arm_commands += 1

    def _on_status(self, msg: String) -> None:
        try:
            status = json.loads(msg.data)
        except json.JSONDecodeError:
            log.warning("ignored an episode status that is not JSON: %.80s", msg.data)
            return
        with self.lock:
            self.statuses.append(status)

    def _on_diag(self, msg: DiagnosticArray) -> None:
        s = stamp_ns(msg.header.stamp)
        with self.lock:
            for st in msg.status:
                values = {kv.key: kv.value for kv in st.values}
                self.diag[st.name.lstrip("/")] = (s, values)
                if self.view is not None and st.name.lstrip("/") == PLANNER:
                    self.view.costs.append((s, parse_cost_values(values)))

    def _on_detections(self, msg: MarkerArray) -> None:
        if not msg.markers:
            return
        s, view = stamp_ns(msg.markers[0].header.stamp), parse_detection_markers(msg)
        with self.lock:
            if self.view is not None:
                self.view.views[s] = view

    def _on_plan_markers(self, msg: MarkerArray) -> None:
        path = parse_plan_markers(msg)
        if path is None:
            return
        s = stamp_ns(msg.markers[0].header.stamp)
        with self.lock:
            if self.view is not None:
                self.view.plans[s] = path

    def _on_verdict(self, msg: Header) -> None:
        with self.lock:
            if self.view is not None:
                self.view.verdicts[stamp_ns(msg.stamp)] = msg.frame_id

    def _on_joint_state(self, msg: JointState) -> None:
        try:
            q, _ = joint_state_arrays(msg, self._joint_names)
        except ValueError:
            return
        with self.lock:
            if self.view is not None:
                self.view.joints.append((stamp_ns(msg.header.stamp), q))

    def _on_image(self, msg: Image) -> None:
        if msg.encoding != "rgb8" or len(msg.data) != msg.height * msg.step:
            return
        rows = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)
        img = rows[:, : 3 * msg.width].reshape(msg.height, msg.width, 3).copy()
        with self.lock:
            if self.images is not None:
                self.images.append((stamp_ns(msg.header.stamp), img))

    # ------------------------------------------------------------------ actions
    def record_images(
        self, on: bool, view: bool = False, keep: int | None = None
    ) -> list[tuple[int, np.ndarray]]:
        """Start (``on``) or stop receiving camera frames; stopping returns them
        (stamp ns, [H, W, 3] RGB). ``view`` (when starting): also keep what the stack publishes
        about each step (:class:`ViewLog`; :meth:`take_view` after stopping). ``keep``: only the
        newest ``keep`` frames are kept (None: all)."""
        if on and self._image_sub is None:
            with self.lock:
                self.images = deque(maxlen=keep)
                self.view = ViewLog() if view else None
            self._between_spins(lambda: self._subscribe_images(view))
            return []
        if not on and self._image_sub is not None:
            self._between_spins(self._unsubscribe_images)
        with self.lock:
            frames, self.images = list(self.images or ()), None
        return frames

    def _subscribe_images(self, view: bool) -> None:
        n = self.node
        self._image_sub = n.create_subscription(
            Image, self.image_topic, self._on_image, self._sensor_qos
        )
        if view:
            keep, rel = HistoryPolicy.KEEP_LAST, ReliabilityPolicy.RELIABLE
            deep = QoSProfile(history=keep, depth=200, reliability=rel)
            self._view_subs = [
                n.create_subscription(MarkerArray, "/wm/detections", self._on_detections, deep),
                n.create_subscription(MarkerArray, "/wm/plan_markers", self._on_plan_markers, deep),
                n.create_subscription(Header, "/wm/safety/verdict", self._on_verdict, deep),
                n.create_subscription(JointState, "/joint_states", self._on_joint_state, deep),
            ]

    def _unsubscribe_images(self) -> None:
        for sub in (self._image_sub, *self._view_subs):
            self.node.destroy_subscription(sub)
        self._image_sub, self._view_subs = None, []

    def take_view(self) -> ViewLog | None:
        """The view log of the last recording (once), or None."""
        with self.lock:
            view, self.view = self.view, None
        return view

    def reset(self, seed: int) -> None:
        self.reset_pub.publish(Int64(data=int(seed)))

    def end_episode(self) -> None:
        self.end_pub.publish(Empty())

    def call(self, client: Any, request: Any, timeout: float) -> Any:
        if not client.wait_for_service(timeout_sec=timeout):
            raise DriverError(f"service {client.srv_name} is not available after {timeout:.0f} s")
        log.debug("calling %s", client.srv_name)
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > deadline or not self.thread.is_alive():
                client.remove_pending_request(future)
                raise DriverError(
                    self._spin_trouble(
                        f"service {client.srv_name} did not answer in {timeout:.0f} s"
                    )
                )
            time.sleep(0.005)
        return future.result()

    def planner_state(self, timeout: float = 10.0) -> str:
        return self.call(self.get_state, GetState.Request(), timeout).current_state.label

    def planner_transition(self, transition: str, timeout: float = 30.0) -> None:
        tid = {
            "activate": Transition.TRANSITION_ACTIVATE,
            "deactivate": Transition.TRANSITION_DEACTIVATE,
        }[transition]
        req = ChangeState.Request(transition=Transition(id=tid))
        if not self.call(self.change_state, req, timeout).success:
            raise DriverError(f"the planner refused to {transition}")

    def arm_publishers(self) -> list[str]:
        """Names of the nodes that publish arm commands."""
        info = self.node.get_publishers_info_by_topic(self.arm_topic)
        return sorted(i.node_name for i in info)

    def forget_before(self, ns: int) -> None:
        """Drop the frames, latents and command sources stamped before simulated time ``ns``
        (an episode that is over), so a long run keeps only the episode in progress."""
        with self.lock:
            self.frame_wall = {s: t for s, t in self.frame_wall.items() if s >= ns}
            self.encoded = {s for s in self.encoded if s >= ns}
            self.sources = [(s, t) for s, t in self.sources if s >= ns]

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5.0)
        self.node.destroy_node()
        self.context.try_shutdown()

    # ------------------------------------------------------------------ figures
    def window_stats(self, w: Window) -> dict:
        """Latency, rates and frame counts of the frames in ``w``."""
        with self.lock:
            frames = {s: t for s, t in self.frame_wall.items() if w.start_ns < s <= w.end_ns}
            sent: dict[int, int] = {}
            for s, t in self.sources:
                if s in frames and s not in sent:
                    sent[s] = t
            encoded = {s for s in self.encoded if s in frames} | set(sent)
        lat = [(sent[s] - frames[s]) / 1e6 for s in sorted(sent)]
        send_times = sorted(sent.values())
        frame_times = sorted(frames.values())
        return {
            "latencies_ms": lat,
            "frames_published": len(frames),
            "frames_encoded": len(encoded),
            "frames_commanded": len(sent),
            "dropped_frames": len(frames) - len(encoded),
            "command_span_s": (send_times[-1] - send_times[0]) / 1e9 if sent else 0.0,
            "frame_span_s": (frame_times[-1] - frame_times[0]) / 1e9 if frames else 0.0,
        }


def rate(windows: list[dict], count: str, span: str) -> float:
    """Events per second over windows: intervals between ``count`` events / their ``span``."""
    intervals = sum(max(w[count] - 1, 0) for w in windows)
    seconds = sum(w[span] for w in windows)
    return intervals / seconds if seconds > 0 else 0.0


def stack_figures(windows: list[dict]) -> dict:
    """The end-to-end figures over several windows (episodes)."""
    lat = [x for w in windows for x in w["latencies_ms"]]
    total = {
        k: sum(w[k] for w in windows)
        for k in ("frames_published", "frames_encoded", "frames_commanded", "dropped_frames")
    }
    cmd_rate = rate(windows, "frames_commanded", "command_span_s")
    cam_rate = rate(windows, "frames_published", "frame_span_s")
    p99 = percentile(lat, 99)
    published = total["frames_published"]
    return {
        "e2e_latency_ms_p50": percentile(lat, 50),
        "e2e_latency_ms_p99": p99,
        "e2e_latency_ms_max": max(lat) if lat else float("nan"),
        "e2e_latency_samples": len(lat),
        "achieved_control_hz": cmd_rate,
        "camera_hz": cam_rate,
        **total,
        "p99_vs_target": p99 / LATENCY_TARGET_MS,
        "control_hz_vs_target": cmd_rate / RATE_TARGET_HZ,
        "frames_without_command": published - total["frames_commanded"],
        "commands_per_frame": total["frames_commanded"] / published if published else 0.0,
        "meets_targets": bool(
            p99 <= LATENCY_TARGET_MS and cmd_rate >= (1.0 - RATE_TOLERANCE) * RATE_TARGET_HZ
        ),
    }


def filter_counts(values: dict[str, str]) -> dict[str, int]:
    """``filter_<status>`` keys of wm_safety's diagnostics -> {status: count}."""
    return {k[len("filter_") :]: int(v) for k, v in values.items() if k.startswith("filter_")}


@dataclass
class EpisodeStart:
    seed: int
    started_ns: int
    """Simulated time the planner became active (frames after it count)."""
    episode_ns: int
    """Simulated time the sim started the episode."""
    filter_before: dict[str, int]


class Session:
    """A started stack and the probe that drives it."""

    def __init__(self, probe: StackProbe, children: ProcessStack, brain: bool = True):
        self.probe = probe
        self.children = children
        self.brain = brain
        """Perception and the planner run (else a teleoperator drives: nothing to wait for)."""
        self.planner_active = False

    def problem(self) -> str | None:
        ended = self.children.ended()
        if ended is None:
            return None
        name, rc = ended
        where = self.children.log_path(name)
        return f"stack process {name} exited with status {rc}" + (
            f" (log: {where})" if where else ""
        )

    def wait(self, what: str, pred: Callable[[], Any], timeout: float) -> Any:
        """Poll ``pred`` (under the probe's lock) until it is truthy; raise DriverError if a
        stack process exits or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            with self.probe.lock:
                value = pred()
            if value:
                return value
            problem = self.problem()
            if problem:
                raise DriverError(f"{problem} while waiting for {what}")
            if time.monotonic() > deadline:
                raise DriverError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.02)

    def wait_ready(self, timeout: float) -> float:
        """Wait until every node runs (planner active, frames encoded, safety reporting);
        returns the seconds it took."""
        t0 = time.monotonic()
        p = self.probe
        self.wait("the sim's first episode status", lambda: p.statuses, timeout)
        if self.brain:
            left = timeout - (time.monotonic() - t0)
            self.wait("perception's first latent", lambda: p.encoded, left)
        self.wait(
            "the safety node's diagnostics",
            lambda: SAFETY in p.diag,
            timeout - (time.monotonic() - t0),
        )
        if not self.brain:
            return time.monotonic() - t0
        left = max(1.0, timeout - (time.monotonic() - t0))
        self.wait("the planner's diagnostics", lambda: PLANNER in p.diag, left)
        state = p.planner_state(timeout=left)
        if state != "active":
            raise DriverError(f"the planner is {state}, not active")
        self.planner_active = True
        return time.monotonic() - t0

    def set_planner(self, active: bool) -> None:
        if self.brain and active != self.planner_active:
            self.probe.planner_transition("activate" if active else "deactivate")
            self.planner_active = active

    def safety_counts(self, timeout: float = 10.0) -> dict[str, int]:
        """wm_safety's cumulative filter counts, from a report sent after this call."""
        p = self.probe
        with p.lock:
            after = p.latest_ns
        stamp, values = self.wait(
            "fresh safety diagnostics",
            lambda: p.diag.get(SAFETY) if p.diag.get(SAFETY, (0,))[0] > after else None,
            timeout,
        )
        return filter_counts(values)

    def begin(
        self, seed: int, record: bool = False, timeout: float = 60.0, view: bool = False
    ) -> EpisodeStart:
        """Planner off, sim reset to ``seed``, planner on (a new task). ``record``: keep the
        camera frames (and with ``view`` what the stack publishes about each step)."""
        p = self.probe
        self.set_planner(False)
        if record:
            p.record_images(True, view=view)
        with p.lock:
            published_ns = p.latest_ns
        p.reset(seed)

        def new_episode() -> dict | None:
            for s in p.statuses:
                if s["seed"] == seed and sim_ns(s["started_s"]) >= published_ns - 1_000_000:
                    return s
            return None

        status = self.wait(f"the sim to start the episode with seed {seed}", new_episode, timeout)
        before = self.safety_counts()
        self.set_planner(True)
        with p.lock:
            started = p.latest_ns
        return EpisodeStart(seed, started, sim_ns(status["started_s"]), before)

    def final_status(self, start: EpisodeStart) -> dict | None:
        for s in self.probe.statuses:
            if s["seed"] == start.seed and s["done"] and sim_ns(s["stamp_s"]) > start.started_ns:
                return s
        return None

    def planner_done(self, start: EpisodeStart) -> bool:
        if not self.brain:
            return False
        stamp, values = self.probe.diag.get(PLANNER, (0, {}))
        return stamp > start.started_ns and values.get("done") == "True"

    def run_to_end(self, start: EpisodeStart, timeout: float) -> tuple[dict, str]:
        """Wait for the episode's final scores; returns them and why it ended."""
        ended = self.wait(
            f"the end of the episode with seed {start.seed}",
            lambda: self.final_status(start) or self.planner_done(start),
            timeout,
        )
        if isinstance(ended, dict):
            return ended, ended["end_reason"]
        self.probe.end_episode()
        final = self.wait("the final scores", lambda: self.final_status(start), 30.0)
        return final, "planner_done"

    def finish(self, start: EpisodeStart, final: dict, reason: str) -> dict:
        """Planner off; the episode's record for ``build_report`` plus its stack figures."""
        self.set_planner(False)
        after = self.safety_counts()
        keys = set(after) | set(start.filter_before)
        flt = {k: after.get(k, 0) - start.filter_before.get(k, 0) for k in keys}
        window = self.probe.window_stats(Window(start.started_ns, sim_ns(final["stamp_s"])))
        record = {k: final[k] for k in ("objects", "cleared", "dropped", "sim_time_s", "safety")}
        # the names wm eval's report uses; the planner's diagnostics say "done" for a table
        # read empty and for an attempt budget spent alike, so both count as "done" here
        ended_by = {"table_empty": "cleared", "planner_done": "done"}.get(reason, reason)
        left = final["objects"] - final["cleared"] - final["dropped"]
        record |= {"ended_by": ended_by, "false_done": ended_by == "done" and left > 0}
        return record | {
            "seed": start.seed,
            "filter": flt,
            "latencies_ms": window["latencies_ms"],
            "end_reason": reason,
            "window": window,
        }


def episode_timeout(scene: dict) -> float:
    """Wall seconds an episode may take: its time limit at the target real-time factor, three
    times over (a loaded machine runs the sim slower than its target), plus a minute."""
    return 3.0 * scene["max_episode_s"] / scene["real_time_factor"] + 60.0


def merged_overrides(
    seed: int, overrides: dict[str, dict] | None, sim_node: str = "wm_sim"
) -> dict[str, dict]:
    out = {k: dict(v) for k, v in DRIVER_OVERRIDES.items()}
    for node, params in (overrides or {}).items():
        out.setdefault(node, {}).update(params)
    out.setdefault(sim_node, {})["seed"] = seed
    return out


@dataclass(frozen=True)
class World:
    """Which stack the driver scores: the profile, its launch arguments and what follows from
    them (the simulator node, the arm and camera topics, the cell file)."""

    profile: str = "sim"
    arguments: tuple[tuple[str, str], ...] = ()
    """Launch arguments (``sim`` included), e.g. ``(("sim", "pybullet"),)`` for ``wm up
    pybullet``."""

    def stack(self, overrides: dict[str, dict] | None = None, params_file=None):
        from wm_bringup.stack import describe

        args = dict(self.arguments)
        sim = args.pop("sim", None)
        return describe(
            self.profile, sim=sim, params_file=params_file, overrides=overrides, arguments=args
        )

    def sim_node(self) -> str:
        from wm_bringup.stack import SIM_NODES

        return SIM_NODES[self.stack().simulator or "mujoco"]

    def topics(self) -> tuple[str, str]:
        """(arm command topic, camera image topic) the stack's nodes use."""
        from wm_bringup.stack import ARM_COMMAND_TOPIC, IMAGE_TOPIC

        stack = self.stack()
        remap = dict(stack.node("wm_safety").remappings)
        camera = "wm_perception" if self.brain else self.sim_node()  # who reads / makes images
        image = dict(stack.node(camera).remappings)
        return remap.get(ARM_COMMAND_TOPIC, ARM_COMMAND_TOPIC), image.get(IMAGE_TOPIC, IMAGE_TOPIC)

    @property
    def brain(self) -> bool:
        """Whether perception and the planner run (not with ``teleop:=true``: the world's
        scripted teleoperator drives the arm, for recordings)."""
        return any(n.name == PLANNER for n in self.stack().nodes)


SIM_WORLD = World()


def start_session(
    mode: str,
    seed: int,
    overrides: dict[str, dict] | None,
    log_dir: Path,
    backend: str = "",
    params_file: str | Path | None = None,
    startup_timeout_s: float = 300.0,
    world: World = SIM_WORLD,
) -> tuple[Session, float]:
    """Start the stack and the probe; wait until it is ready. Returns (session, startup s)."""
    probe = StackProbe(*world.topics())
    try:
        children = launch_children(
            world.profile,
            mode=mode,
            backend=backend,
            params_file=params_file,
            overrides=merged_overrides(seed, overrides, world.sim_node()),
            log_dir=log_dir,
            arguments=dict(world.arguments),
        )
    except BaseException:
        probe.close()
        raise
    return ready_session(probe, children, startup_timeout_s, world.brain)


def ready_session(
    probe: Any, children: Any, startup_timeout_s: float, brain: bool = True
) -> tuple[Session, Any]:
    """(the session of ``probe`` and ``children``, what ``wait_ready`` reports); the session is
    stopped if the stack does not come up."""
    session = Session(probe, children, brain)
    try:
        return session, session.wait_ready(startup_timeout_s)
    except BaseException:
        stop_session(session)
        raise


def stop_session(session: Session) -> None:
    code = session.children.stop()
    session.probe.close()
    if code:
        log.warning("a stack process exited with status %s while stopping", code)


def run_episodes(
    episodes: int,
    seed: int,
    out_dir: Path,
    *,
    mode: str = "processes",
    video: str = "annotated",
    rerun: Path | None = None,
    backend: str = "",
    params_file: str | Path | None = None,
    overrides: dict[str, dict] | None = None,
    startup_timeout_s: float = 300.0,
    world: World = SIM_WORLD,
) -> dict:
    """Run ``episodes`` episodes (seeds ``seed ..``) through the stack; write and return the
    report. Node logs go to ``out_dir/logs``. ``world``: the stack to score (the MuJoCo sim
    profile by default; ``wm up pybullet``: the real profile against the PyBullet world).
    ``video``: ``annotated``, ``raw`` or ``none`` (episode 0's mp4); ``rerun``: an .rrd file of
    episode 0."""
    from wm_core.eval.runner import VIDEO_MODES, build_report, write_episode0_media
    from wm_core.sim import SceneConfig

    if episodes < 1:
        raise ValueError(f"episodes={episodes} must be >= 1")
    if video not in VIDEO_MODES:
        raise ValueError(f"video={video!r} must be one of {VIDEO_MODES}")
    record0 = video != "none" or rerun is not None
    view0 = video == "annotated" or rerun is not None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    session, startup_s = start_session(
        mode, seed, overrides, out_dir / "logs", backend, params_file, startup_timeout_s, world
    )
    log.info("the stack (%s) is up after %.1f s", mode, startup_s)
    results, frames, scene, steps = [], [], {}, []
    try:
        arm_publishers = session.probe.arm_publishers()
        for i in range(episodes):
            start = session.begin(seed + i, record=record0 and i == 0, view=view0)
            with session.probe.lock:
                scene = dict(session.probe.statuses[-1]["scene"])
            final, reason = session.run_to_end(start, episode_timeout(scene))
            if record0 and i == 0:
                end = sim_ns(final["stamp_s"])
                got = session.probe.record_images(False)
                got = [(s, img) for s, img in got if start.episode_ns <= s <= end]
                frames = [img for _, img in got]
                view = session.probe.take_view()
                if view is not None:
                    steps = build_records(got, view, start.episode_ns)
            results.append(session.finish(start, final, reason))
            session.probe.forget_before(sim_ns(final["stamp_s"]))  # keep only what is to come
            r = results[-1]
            log.info(
                "episode %d (seed %d): %d/%d cleared, %s, %.1f sim s",
                i,
                seed + i,
                r["cleared"],
                r["objects"],
                reason,
                r["sim_time_s"],
            )
        with session.probe.lock:
            arm_commands = session.probe.arm_commands
    finally:
        stop_session(session)
    windows = [r.pop("window") for r in results]
    figures = stack_figures(windows)
    if not figures["e2e_latency_samples"]:
        raise DriverError(
            f"no command reached the arm for any camera frame (see the logs in {out_dir / 'logs'})"
        )
    names = {f.name for f in fields(SceneConfig)}
    cfg = SceneConfig(**{k: v for k, v in scene.items() if k in names})
    where = mode if world == SIM_WORLD else f"{mode}, {world.profile} profile"
    if world != SIM_WORLD:
        where += f", sim:={dict(world.arguments).get('sim')}"
    # teleop:=true: the world's scripted teleoperator drove (recordings); the frame and latency
    # figures are then the teleoperator's (a frame it answered counts as encoded)
    policy = "latent-mpc" if world.brain else "scripted teleoperator"
    name = f"{policy} (ROS 2 stack, {where})"
    report = build_report(name, seed, cfg, results)
    if "physics_hz" in scene:  # a world whose physics rate is not a SceneConfig's (PyBullet)
        report |= {"physics_hz": scene["physics_hz"], "world": scene.get("world", "")}
        report |= {
            "cell": scene.get("cell", ""),
            "image_size": [scene["image_size"], scene.get("image_height")],
        }
    per_episode_keys = (
        "e2e_latency_ms_p50",
        "e2e_latency_ms_p99",
        "achieved_control_hz",
        "frames_published",
        "frames_commanded",
        "frames_without_command",
        "dropped_frames",
    )
    for row, r, w in zip(report["per_episode"], results, windows, strict=True):
        f = stack_figures([w])
        row |= {"end_reason": r["end_reason"]} | {k: f[k] for k in per_episode_keys}
    report |= figures | {
        "latency_definition": LATENCY_DEFINITION,
        "arm_commands": arm_commands,
        "arm_command_publishers": arm_publishers,
        "stack": {
            "mode": mode,
            "backend": backend,
            "params_file": str(params_file) if params_file else "wm_bringup config/stack.yaml",
            "real_time_factor": scene["real_time_factor"],
            "startup_s": round(startup_s, 2),
            "cpu_count": os.cpu_count(),
        },
        "wall_s": round(time.monotonic() - t0, 2),
    }
    report |= write_episode0_media(
        out_dir,
        video,
        frames,
        steps,
        _cell_for(world.stack(overrides, params_file).cell_file()),
        cfg.control_hz,
        rerun,
        app_id="wm up sim",
    )
    (out_dir / "report.json").write_text(json.dumps(finite_json(report), indent=2) + "\n")
    return report


def _cell_for(cell_file: str):
    """The cell the stack's nodes were given, else the sim cell."""
    from wm_core.cell import cell_or_default

    return cell_or_default(cell_file or None)


def finite_json(obj: Any) -> Any:
    """NaN/inf -> None, so the report is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_json(v) for v in obj]
    return obj


def summary(report: dict) -> str:
    """``wm eval``'s summary table plus the stack's end-to-end figures."""
    from wm_core.eval.runner import summary_table

    def ms(key: str) -> str:
        v = report.get(key)
        return "n/a" if v is None or not math.isfinite(v) else f"{v:.1f}"

    rows = [
        ("e2e latency p50/p99 (ms)", f"{ms('e2e_latency_ms_p50')} / {ms('e2e_latency_ms_p99')}"),
        ("  target p99", f"<= {LATENCY_TARGET_MS:g} ms"),
        ("achieved rate (Hz)", f"{report['achieved_control_hz']:.2f}"),
        ("  target", f">= {RATE_TARGET_HZ:g} Hz"),
        (
            "dropped frames",
            f"{report['dropped_frames']} of {report['frames_published']} published "
            f"({report['frames_without_command']} without a command)",
        ),
    ]
    width = 25
    extra = "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
    return f"{summary_table(report)}\n{extra}"
