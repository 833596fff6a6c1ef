"""Fault injection through the running stack (``wm chaos --out DIR``).

The sim stack runs as one process per node (so a SIGKILL is real, and the runner respawns the
node as ``ros2 launch`` with ``respawn=True`` does), plus :mod:`wm_bringup.chaos_relay`: the
brain nodes' inputs (camera image, latent, joint states, ``/clock``) are remapped onto
``/chaos/...`` and the relay republishes the real messages there, breaking them on demand. Each
fault is one table-clearing episode (the same seed for every fault, so the ``none`` row is the
reference):

1. the episode starts as in ``wm up sim --episodes`` (planner off, sim reset, planner on);
2. the driver waits until the arm is carrying an object (suction on, moving), or moving fast
   for an e-stop, and injects the fault: a relay fault for its duration, a SIGKILL (the node
   comes back after ``RESPAWN_DELAY_S`` plus its start-up), an e-stop (released by the
   ``release_estop`` parameter), or busy-loop processes pinned to the planner's core;
3. the episode runs to its end (table empty, time limit, or the planner done).

What is measured, all on the wall clock from DDS source timestamps (when the sim, the safety
node or the relay published; never when this process woke up):

- **violations**: the simulator's safety events over the episode (ground truth: collisions,
  joint position and velocity limits, tool speed, keep-out), which must be 0;
- **hold** (ms): from the fault taking effect until the arm is commanded to stay put: the end
  of the last arm command (the safety node's output) that moved the arm during the fault; 0
  when none did. ``settled`` (ms): until the measured joint speeds stay below
  ``REST_RAD_S`` for the rest of the fault (the arm's own dynamics included);
- **recovery** (ms): from the fault clearing (the relay restoring the topic, the e-stop
  released, the hog stopped), or from the killed node being back (its first output after the
  respawn), until the first arm command that moves the arm again;
- **dropped / lost**: objects the simulator counts as dropped; objects lost with a killed
  simulator (its world starts again);
- **completed**: every object of the episode cleared.

Faults where the stack is meant to carry on (out-of-order frames, a starved planner) need no
hold; their ``hold`` is reported but not held to the target.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import logging
import math
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from std_msgs.msg import Bool, String
from trajectory_msgs.msg import JointTrajectory

from wm_bringup.chaos_relay import PREFIX
from wm_bringup.episodes import (
    DriverError,
    EpisodeStart,
    Session,
    StackProbe,
    finite_json,
    merged_overrides,
    ready_session,
    stamp_ns,
    stop_session,
)
from wm_bringup.msgs import arm_joint_names, parse_trajectory
from wm_bringup.nodekit import RELIABLE_QOS
from wm_bringup.runner import ProcessStack, package_paths, process_commands
from wm_bringup.stack import RESPAWN_DELAY_S, Stack, describe

log = logging.getLogger(__name__)

HOLD_TARGET_MS = 200.0
RECOVERY_TARGET_MS = 2000.0
REST_RAD_S = 0.02
"""The arm is at rest when every measured joint speed is below this (rad/s)."""
MOVE_RAD = 2e-3
"""An arm command moves the arm when its first point is this far (rad, any joint) from the
joints measured just before it; a hold commands the measured joints."""
CARRY_SPEED_RAD_S = 0.05
FAST_SPEED_RAD_S = 0.3
TRIGGER_TIMEOUT_S = 25.0
RELAY = "wm_chaos_relay"
CHAOS_OVERRIDES = {
    "wm_perception": {"diagnostics_period_s": 0.1},
    "wm_planner": {"diagnostics_period_s": 0.1},
    "wm_safety": {"diagnostics_period_s": 0.25},
}
"""Faster diagnostics: a respawned node is seen active within 0.1 s."""
REMAPS = {
    "wm_perception": ("/camera/image_raw", "/clock"),
    "wm_planner": ("/wm/latent", "/joint_states", "/clock"),
    "wm_safety": ("/joint_states", "/clock"),
}
"""The inputs of each brain node that go through the relay."""


@dataclass(frozen=True)
class Fault:
    name: str
    kind: str
    """none | relay | kill | estop | cpu_hog | mixed"""
    description: str
    topic: str = ""
    fault: str = ""
    arg: float = 0.0
    duration_s: float = 0.0
    nodes: tuple[str, ...] = ()
    """kill: the node; estop: the nodes killed (and respawned) while it is latched."""
    expect_hold: bool = True


FAULTS = (
    Fault("none", "none", "no fault (the reference episode)", expect_hold=False),
    Fault("camera_dropout_1s", "relay", "no camera frames for 1 s", "image", "drop", 0, 1.0),
    Fault("camera_dropout_10s", "relay", "no camera frames for 10 s", "image", "drop", 0, 10.0),
    Fault("frame_wrong_size", "relay", "frames whose size does not fit their data, 2 s",
          "image", "wrong_size", 0, 2.0),
    Fault("frame_wrong_encoding", "relay", "frames in an unexpected encoding (yuv422), 2 s",
          "image", "wrong_encoding", 0, 2.0),
    Fault("frame_black", "relay", "all-black frames, 2 s", "image", "black", 0, 2.0),
    Fault("frame_truncated", "relay", "frames with half their data, 2 s",
          "image", "truncated", 0, 2.0),
    Fault("joint_states_nan", "relay", "NaN / inf joint positions to planner and safety, 2 s",
          "joint_states", "nan", 0, 2.0),
    Fault("stamps_out_of_order", "relay", "camera frames swapped in pairs, 3 s",
          "image", "reorder", 0, 3.0, expect_hold=False),
    Fault("stamps_stale", "relay", "camera frames stamped 1 s in the past, 2 s",
          "image", "stale", 1.0, 2.0),
    Fault("clock_jump", "relay", "/clock of perception, planner, safety 5 s ahead for 1.5 s, "
          "then back", "clock", "offset", 5.0, 1.5),
    Fault("latent_latency_spike", "relay", "every latent 0.8 s late, 2 s",
          "latent", "delay", 0.8, 2.0),
    Fault("kill_perception", "kill", "SIGKILL wm_perception", nodes=("wm_perception",)),
    Fault("kill_planner", "kill", "SIGKILL wm_planner", nodes=("wm_planner",)),
    Fault("kill_sim", "kill", "SIGKILL wm_sim: the simulated arm stops with its process (no "
          "hold to measure); its world starts again", nodes=("wm_sim",), expect_hold=False),
    Fault("cpu_hog", "cpu_hog", "2 busy loops on the planner's core (planner pinned to it), 5 s",
          arg=2, duration_s=5.0, expect_hold=False),
    Fault("estop_fast_move", "estop", "e-stop during a fast move, released after 1 s",
          duration_s=1.0),
    Fault("estop_across_restarts", "estop", "e-stop, then SIGKILL perception, planner, sim in "
          "turn (each respawned), then released", duration_s=1.0,
          nodes=("wm_perception", "wm_planner", "wm_sim")),
    Fault("mixed", "mixed", "3 relay faults on different topics, overlapping, then SIGKILL of "
          "perception or planner (chosen by the seed)"),
)  # fmt: skip
BY_NAME = {f.name: f for f in FAULTS}
MIXED_POOL = tuple(
    BY_NAME[n]
    for n in (
        "camera_dropout_1s",
        "frame_black",
        "stamps_stale",
        "joint_states_nan",
        "latent_latency_spike",
        "clock_jump",
    )
)


def select(names: list[str] | None) -> tuple[Fault, ...]:
    """The faults named (all by default, in the order above); ValueError naming an unknown."""
    if not names:
        return FAULTS
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown fault(s) {unknown}; the faults are {list(BY_NAME)}")
    return tuple(BY_NAME[n] for n in names)


# --------------------------------------------------------------------------- the probe
class ChaosProbe(StackProbe):
    """The episode driver's probe, plus what the chaos figures need (wall ns, DDS source
    timestamps): joint speeds, arm commands, planner commands, latents, diagnostics per node,
    the relay's acknowledgements, and publishers for the relay control and the e-stop."""

    def __init__(self) -> None:
        super().__init__()
        self.names = arm_joint_names()
        self.joints: list[tuple[int, float, np.ndarray, bool]] = []
        """(wall ns, max |joint velocity|, positions [6], suction) per sim joint state."""
        self.arm: list[tuple[int, np.ndarray, int]] = []
        """(wall ns, first point [6], duration ns) per arm command."""
        self.plan_cmds: list[int] = []
        self.latents: list[int] = []
        self.clocks: list[int] = []
        self.diag_log: dict[str, list[tuple[int, str]]] = {}
        self.phases: list[tuple[int, str]] = []
        """(wall ns, task phase) of each planner report."""
        self.acks: dict[int, int] = {}
        self.firsts: dict[int, int] = {}
        """Relay request id -> wall ns of the first message the fault affected."""
        self.sim_restarts = 0
        n = self.node
        deep = self.subs[0].qos_profile
        self.subs += [
            n.create_subscription(JointTrajectory, "/wm/plan_cmd", self._on_plan, deep),
            n.create_subscription(String, f"{PREFIX}/events", self._on_ack, deep),
        ]
        from sensor_msgs.msg import JointState

        self.subs.append(n.create_subscription(JointState, "/joint_states", self._on_js, deep))
        self.control = n.create_publisher(String, f"{PREFIX}/control", RELIABLE_QOS)
        self.estop_pub = n.create_publisher(Bool, "/wm/estop", RELIABLE_QOS)
        self.set_params = n.create_client(SetParameters, "/wm_safety/set_parameters")
        self._next_id = 0

    def _on_clock(self, msg: Any, info: dict) -> None:
        s = stamp_ns(msg.clock)
        with self.lock:
            self.clocks.append(int(info["source_timestamp"]))
            if s < self.latest_ns - 1_000_000_000:  # a new simulator: its clock starts again
                # what is keyed or compared by simulated time belongs to the old world
                self.sim_restarts += 1
                self.frame_wall.clear()
                self.encoded.clear()
                self.sources.clear()
                self.statuses.clear()
                self.diag.clear()
                self.latest_ns = 0
        super()._on_clock(msg, info)

    def _on_latent(self, msg: Any, info: dict) -> None:  # type: ignore[override]
        with self.lock:
            self.latents.append(int(info["source_timestamp"]))
        super()._on_latent(msg)

    def _on_arm(self, msg: JointTrajectory, info: dict) -> None:  # type: ignore[override]
        try:
            traj = parse_trajectory(msg, self.names)
            q, duration = traj.positions[0], int(traj.times[-1] * 1e9)
        except (ValueError, IndexError):
            q = None
        with self.lock:
            self.arm_commands += 1
            if q is not None:
                self.arm.append((int(info["source_timestamp"]), q, duration))

    def _on_plan(self, msg: JointTrajectory, info: dict) -> None:
        with self.lock:
            self.plan_cmds.append(int(info["source_timestamp"]))

    def _on_js(self, msg: Any, info: dict) -> None:
        index = {name: i for i, name in enumerate(msg.name)}
        try:
            q = np.array([msg.position[index[j]] for j in self.names], float)
            v = np.array([msg.velocity[index[j]] for j in self.names], float)
            suction = bool(msg.position[index["suction_cup"]] > 0.5)
        except (KeyError, IndexError):
            return
        with self.lock:
            self.joints.append((int(info["source_timestamp"]), float(np.abs(v).max()), q, suction))

    def _on_diag(self, msg: Any, info: dict) -> None:  # type: ignore[override]
        t = int(info["source_timestamp"])
        with self.lock:
            for st in msg.status:
                name = st.name.lstrip("/")
                self.diag_log.setdefault(name, []).append((t, st.message))
                if name == "wm_planner":
                    phase = next((kv.value for kv in st.values if kv.key == "phase"), "")
                    self.phases.append((t, phase))
        super()._on_diag(msg)

    def _on_ack(self, msg: String) -> None:
        try:
            ack = json.loads(msg.data)
        except json.JSONDecodeError:
            return
        with self.lock:
            if "first_ns" in ack:
                self.firsts[int(ack["id"])] = int(ack["first_ns"])
            else:
                self.acks[int(ack["id"])] = int(ack["t_ns"])

    def relay(self, topic: str, fault: str, on: bool, arg: float = 0.0) -> int:
        """Ask the relay to turn a fault on or off; returns the request id."""
        self._next_id += 1
        cmd = {"id": self._next_id, "topic": topic, "fault": fault, "on": on, "arg": arg}
        self.control.publish(String(data=json.dumps(cmd)))
        return self._next_id

    def estop(self) -> int:
        t = time.time_ns()
        self.estop_pub.publish(Bool(data=True))
        return t

    def release_estop(self, timeout: float = 10.0) -> None:
        value = ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=True)
        req = SetParameters.Request(parameters=[ParameterMsg(name="release_estop", value=value)])
        res = self.call(self.set_params, req, timeout)
        if not res.results or not res.results[0].successful:
            raise DriverError("wm_safety refused release_estop")


# --------------------------------------------------------------------------- the stack
def chaos_stack(seed: int, overrides: dict[str, dict] | None = None) -> Stack:
    """The sim stack with the brain nodes' inputs remapped onto the relay's topics."""
    merged = merged_overrides(seed, CHAOS_OVERRIDES)
    for node, params in (overrides or {}).items():
        merged.setdefault(node, {}).update(params)
    stack = describe("sim", overrides=merged)
    nodes = []
    for n in stack.nodes:
        extra = tuple((t, PREFIX + t) for t in REMAPS.get(n.name, ()))
        nodes.append(replace(n, remappings=(*n.remappings, *extra)))
    return replace(stack, nodes=tuple(nodes))


def start(
    seed: int, overrides: dict[str, dict] | None, log_dir: Path, startup_timeout_s: float = 300.0
) -> tuple[Session, float]:
    """Start the relay and the stack (one process each, respawned) and wait until ready."""
    probe = ChaosProbe()
    try:
        stack = chaos_stack(seed, overrides)
        commands = {RELAY: [sys.executable, "-m", "wm_bringup.chaos_relay"]}
        commands |= {
            n.name: c for n, c in zip(stack.running(), process_commands(stack), strict=True)
        }
        children = ProcessStack(commands, package_paths(stack), log_dir, respawn=True)
        children.start()
    except BaseException:
        probe.close()
        raise
    return ready_session(probe, children, startup_timeout_s)


stop = stop_session  # the episode driver's: stop the processes, then close the probe


# --------------------------------------------------------------------------- figures
def moving(arm, joints, restarts: list[int] = ()) -> list[bool]:
    """Per arm command: whether it moves the arm. A command moves it when its first point is
    more than MOVE_RAD (any joint) from the joints measured just before it *and* from the
    previous command's: a hold (at the measured joints, or at the target the arm is already
    reaching) does not. ``restarts``: wall ns at which the simulated arm was killed; the
    commands before one are not a move the respawned arm is making. A command after a
    restart that the probe has no joint state of the new arm for yet (it may discover the new
    publisher later than the nodes do) is judged against the new arm's first joint state:
    the respawned arm stands where it started until a command moves it. Only the new arm's
    joint states count after a restart (those received once the respawn delay has passed);
    with none at all, or after a command that moved it, unknown counts as a move. A command
    sent between a restart and the end of the respawn delay moves nothing: the old arm is
    dead, and the new one, not started yet, never gets it (the arm topic is volatile)."""
    joints = sorted(joints, key=lambda j: j[0])  # a late-discovered publisher's messages
    times = [j[0] for j in joints]
    restarts = sorted(restarts)
    out, prev, t_prev, moved_new = [], None, None, False
    for t, q, _ in arm:
        if any(t_prev is not None and t_prev <= r < t for r in restarts):
            prev, moved_new = None, False  # the new arm never got the commands before it
        i = bisect.bisect_left(restarts, t) - 1
        new_from = restarts[i] + int(RESPAWN_DELAY_S * 0.9e9) if i >= 0 else None
        if new_from is not None and t < new_from:  # no arm to move
            out.append(False)
            t_prev = t
            continue
        k = bisect.bisect_right(times, t) - 1
        if new_from is not None and (k < 0 or times[k] < new_from):  # none of the new arm yet
            first = bisect.bisect_left(times, new_from)
            meas = joints[first][2] if first < len(joints) and not moved_new else None
        else:
            meas = joints[k][2] if k >= 0 else None
        far_meas = meas is None or float(np.abs(q - meas).max()) > MOVE_RAD
        far_prev = prev is None or float(np.abs(q - prev).max()) > MOVE_RAD
        out.append(far_meas and far_prev)
        moved_new |= new_from is not None and out[-1]
        prev, t_prev = q, t
    return out


def hold_ms(arm, joints, t_fault: int, t_end: int, restarts: list[int] = ()) -> float | None:
    """Commanded hold: from ``t_fault`` until the arm is commanded to stay put through
    ``t_end`` (ms); None when it is still being moved at ``t_end``.

    Each arm command replaces the one before (joint_trajectory_controller semantics): the
    last command that moved the arm, sent at t_M, moves it until t_M + its duration (its last
    point's time) or until the next command (a hold) replaces it, whichever is first. A command
    sent before the fault counts while it still runs after it."""
    flags = moving(arm, joints, restarts)
    last = None
    for k, ((t, _, _), m) in enumerate(zip(arm, flags, strict=True)):
        if t >= t_end:  # from t_end on, the commands are the recovery's
            break
        if m:
            last = k
    if last is None:
        return 0.0
    end = arm[last][0] + arm[last][2]
    if last + 1 < len(arm):
        end = min(end, arm[last + 1][0])
    if end > t_end:
        return None
    return max(0.0, (end - t_fault) / 1e6)


def settled_ms(joints, t_fault: int, t_end: int) -> float | None:
    """From ``t_fault`` until the measured joint speeds stay below REST_RAD_S through
    ``t_end`` (ms; 0 if already at rest); None if the arm still moves at ``t_end``."""
    before = [j for j in joints if j[0] <= t_fault]
    after = [j for j in joints if t_fault < j[0] <= t_end]
    if not after:
        return None
    i = len(after)
    while i > 0 and after[i - 1][1] < REST_RAD_S:
        i -= 1
    if i == len(after):
        return None
    if i == 0 and (not before or before[-1][1] < REST_RAD_S):
        return 0.0
    return (after[i][0] - t_fault) / 1e6


def recovery_ms(arm, joints, t_clear: int, restarts: list[int] = ()) -> float | None:
    """From ``t_clear`` to the first arm command after it that moves the arm (ms)."""
    for (t, _, _), m in zip(arm, moving(arm, joints, restarts), strict=True):
        if m and t > t_clear:
            return (t - t_clear) / 1e6
    return None


def moves_after(
    arm, joints, t0: int, t1: int, restarts: list[int] = (), limit: int = 12
) -> list[list[float]]:
    """[ms after ``t0``, largest joint gap to the measured joints (rad), its duration (ms)] of
    the arm commands that moved the arm in ``[t0, t1]`` (the first ``limit``): what a hold
    figure is made of."""
    joints = sorted(joints, key=lambda j: j[0])  # as moving() reads them
    times = [j[0] for j in joints]
    out = []
    for (t, q, dur), m in zip(arm, moving(arm, joints, restarts), strict=True):
        if m and t0 <= t <= t1:
            k = bisect.bisect_right(times, t) - 1
            gap = float(np.abs(q - joints[k][2]).max()) if k >= 0 else float("nan")
            out.append([round((t - t0) / 1e6, 1), round(gap, 4), round(dur / 1e6, 1)])
    return out[:limit]


def phases_after(phases: list[tuple[int, str]], t0: int, limit: int = 16) -> list[str]:
    """The planner's task phases after ``t0``, each change once (what its task did)."""
    out: list[str] = []
    for t, phase in phases:
        if t >= t0 and phase and (not out or out[-1] != phase):
            out.append(phase)
    return out[:limit]


def violation_times(p: ChaosProbe, start: EpisodeStart, fault_sim_s: float) -> list[float]:
    """Simulated seconds after the fault at which the episode's safety events went up (to the
    sim's report period, 1 s): whether a violation came with the fault or elsewhere."""
    out, total = [], 0
    with p.lock:
        for st in p.statuses:
            if st["seed"] != start.seed or st["started_s"] * 1e9 < start.episode_ns - 1e6:
                continue
            n = violations(st)
            if n > total:
                out.append(round(st["stamp_s"] - fault_sim_s, 1))
                total = n
    return out


def flow(p: ChaosProbe, t0: int, seconds: float = 10.0) -> dict[str, int]:
    """Messages seen in the ``seconds`` after ``t0``: where a stack that does not recover
    stops (frames, latents, plans, arm commands)."""
    t1 = t0 + int(seconds * 1e9)
    with p.lock:
        streams = {
            "clock": p.clocks,
            "latents": p.latents,
            "plans": p.plan_cmds,
            "arm_commands": [a[0] for a in p.arm],
        }
        return {k: sum(1 for t in v if t0 < t <= t1) for k, v in streams.items()}


def moving_commands(arm, joints, t0: int, t1: int, restarts: list[int] = ()) -> int:
    flags = moving(arm, joints, restarts)
    return sum(1 for (t, _, _), m in zip(arm, flags, strict=True) if m and t0 <= t <= t1)


def violations(status: dict | None) -> int:
    return int(sum((status or {}).get("safety", {}).values()))


# --------------------------------------------------------------------------- the cases
@dataclass
class Timeline:
    t_fault: int = 0
    """Wall ns the fault took effect: the first message it affected (relay faults), the
    SIGKILL, the e-stop, the hog started."""
    t_on: int = 0
    """Wall ns the relay switched the fault on (relay faults; else ``t_fault``)."""
    t_clear: int = 0
    """Wall ns it cleared, or the killed node was back."""
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class Chaos:
    """Runs faults on a started session (:func:`start`)."""

    def __init__(self, session: Session, seed: int, rng_seed: int):
        self.s = session
        self.p: ChaosProbe = session.probe  # type: ignore[assignment]
        self.seed = seed
        self.rng = random.Random(rng_seed)
        self.sim_kills: list[int] = []
        """Wall ns of each SIGKILL of the simulated arm (the figures judge moves by them)."""

    # ------------------------------------------------------------------ helpers
    def sleep(self, seconds: float) -> None:
        """Sleep, respawning dead nodes meanwhile (``ProcessStack.ended``)."""
        end = time.monotonic() + seconds
        self.s.wait(f"{seconds:.1f} s", lambda: time.monotonic() >= end, seconds + 30.0)

    def latest_status(self, start: EpisodeStart | None = None) -> dict | None:
        with self.p.lock:
            for s in reversed(self.p.statuses):
                if start is None or s["seed"] == start.seed:
                    return s
        return None

    def trigger(self, fast: bool) -> str:
        """Wait until the arm carries an object while moving (``fast``: moves fast)."""
        p = self.p
        t0 = time.monotonic()

        def ready() -> bool:
            if time.monotonic() - t0 > TRIGGER_TIMEOUT_S:
                return True
            if not p.joints:
                return False
            _, speed, _, suction = p.joints[-1]
            return speed >= FAST_SPEED_RAD_S if fast else suction and speed >= CARRY_SPEED_RAD_S

        self.s.wait("the trigger", ready, TRIGGER_TIMEOUT_S + 30.0)
        if time.monotonic() - t0 > TRIGGER_TIMEOUT_S:
            return "timeout"
        return "fast move" if fast else "carrying"

    def relay(self, f: Fault, on: bool) -> tuple[int, int]:
        """Turn a relay fault on/off: (request id, wall ns the relay applied it)."""
        rid = self.p.relay(f.topic, f.fault, on, f.arg)
        t = self.s.wait(f"the relay to apply {f.name}", lambda: self.p.acks.get(rid), 10.0)
        return rid, t

    def first_affected(self, rid: int, t_on: int) -> int:
        """Wall ns of the first message a relay fault affected (``t_on`` if none came)."""
        with self.p.lock:
            return self.p.firsts.get(rid, t_on)

    def kill(self, node: str) -> tuple[int, int]:
        """SIGKILL ``node``; wait until it is back. (kill wall ns, back wall ns)"""
        pid = self.s.children.pids[node]
        t_kill = time.time_ns()
        os.kill(pid, signal.SIGKILL)
        if node == "wm_sim":
            self.sim_kills.append(t_kill)
        p = self.p

        def back() -> int | None:
            """The first sign of the new process: its first output (a clock, a diagnostics
            report saying active, a latent, a plan) or, for perception and the planner, the
            first arm command that moves the arm again (only they can cause one; the probe
            may discover a new publisher later than the nodes do)."""
            if node == "wm_sim":
                ts = list(p.clocks)
            else:
                ts = [t for t, m in p.diag_log.get(node, []) if m == "active"]
                ts += p.latents if node == "wm_perception" else p.plan_cmds
                recent = p.arm[-100:]
                flags = moving(recent, p.joints[-300:], self.sim_kills)
                ts += [t for (t, _, _), m in zip(recent, flags, strict=True) if m]
            ts = [t for t in ts if t > t_kill + RESPAWN_DELAY_S * 1e9 * 0.9]
            return min(ts) if ts else None

        t_back = self.s.wait(f"{node} to come back after SIGKILL", back, 120.0)
        log.info("%s back %.2f s after SIGKILL", node, (t_back - t_kill) / 1e9)
        return t_kill, t_back

    def wait_recovery(self, t_clear: int, timeout: float = 30.0) -> None:
        p = self.p
        try:
            self.s.wait(
                "recovery",
                lambda: (
                    recovery_ms(p.arm[-50:], p.joints[-100:], t_clear, self.sim_kills) is not None
                ),
                timeout,
            )
        except DriverError as exc:
            log.warning("%s", exc)

    def safety_message(self, after: int) -> str | None:
        for t, m in self.p.diag_log.get("wm_safety", []):
            if t > after:
                return m
        return None

    # ------------------------------------------------------------------ faults
    def apply(self, f: Fault) -> Timeline:
        tl = self._apply(f)
        tl.t_on = tl.t_on or tl.t_fault
        return tl

    def _apply(self, f: Fault) -> Timeline:
        tl = Timeline()
        if f.kind == "none":
            tl.t_fault = tl.t_clear = time.time_ns()
            self.sleep(2.0)
        elif f.kind == "relay":
            rid, tl.t_on = self.relay(f, True)
            self.sleep(f.duration_s)
            _, tl.t_clear = self.relay(f, False)
            tl.t_fault = self.first_affected(rid, tl.t_on)
        elif f.kind == "kill":
            tl.t_fault, tl.t_clear = self.kill(f.nodes[0])
        elif f.kind == "estop":
            self.estop(f, tl)
        elif f.kind == "cpu_hog":
            self.cpu_hog(f, tl)
        elif f.kind == "mixed":
            self.mixed(tl)
        else:
            raise ValueError(f"fault kind {f.kind!r}")
        return tl

    def estop(self, f: Fault, tl: Timeline) -> None:
        p = self.p
        tl.t_fault = p.estop()
        self.sleep(f.duration_s)
        t_held = tl.t_fault + int(HOLD_TARGET_MS * 1e6)
        latched = []
        for node in f.nodes:
            _, back = self.kill(node)
            self.sleep(1.0)  # the restarted node runs a while: the e-stop must still hold
            msg = self.safety_message(back)
            latched.append({"node": node, "safety": msg})
        with p.lock:
            t_release = time.time_ns()
            moved = moving_commands(p.arm, p.joints, t_held, t_release, self.sim_kills)
        tl.extra["moves_while_estopped"] = moved
        if latched:
            tl.extra["latched_after_restart"] = latched
        p.release_estop()
        tl.t_clear = t_release

    def cpu_hog(self, f: Fault, tl: Timeline) -> None:
        planner = self.s.children.pids["wm_planner"]
        cpus = sorted(os.sched_getaffinity(planner))
        core = cpus[-1]
        os.sched_setaffinity(planner, {core})
        hog = [sys.executable, "-c", "while True: pass"]
        hogs = [
            subprocess.Popen(hog, preexec_fn=lambda: os.sched_setaffinity(0, {core}))  # noqa: PLW1509
            for _ in range(int(f.arg))
        ]
        try:
            tl.t_fault = time.time_ns()
            with self.p.lock:
                plans0 = len(self.p.plan_cmds)
            self.sleep(f.duration_s)
            with self.p.lock:
                plans = len(self.p.plan_cmds) - plans0
            tl.extra["planner_hz_during_hog"] = round(plans / f.duration_s, 2)
        finally:
            for h in hogs:
                h.kill()
                h.wait()
            tl.t_clear = time.time_ns()
            with contextlib.suppress(ProcessLookupError):  # it may have died meanwhile
                os.sched_setaffinity(planner, set(cpus))
        tl.notes.append(f"planner pinned to CPU {core} with {len(hogs)} busy loops")

    def mixed(self, tl: Timeline) -> None:
        """Three relay faults on different topics, overlapping (each 1.5 s, 0.7 s apart),
        then a SIGKILL of perception or the planner."""
        pool = list(MIXED_POOL)
        self.rng.shuffle(pool)
        chosen, topics = [], set()
        for f in pool:
            if f.topic not in topics:
                chosen.append(replace(f, duration_s=1.5))
                topics.add(f.topic)
            if len(chosen) == 3:
                break
        victim = self.rng.choice(("wm_perception", "wm_planner"))
        tl.notes.append(" + ".join([c.name for c in chosen] + [f"kill {victim}"]))
        for i, f in enumerate(chosen):
            rid, t_on = self.relay(f, True)
            if i == 0:
                first = (rid, t_on)
            if i > 0:
                prev = chosen[i - 1]
                self.sleep(0.8)
                self.relay(prev, False)
            else:
                self.sleep(0.7)
        self.sleep(0.7)
        _, last = self.relay(chosen[-1], False)
        _, back = self.kill(victim)
        tl.t_clear = max(last, back)
        tl.t_on = first[1]
        tl.t_fault = self.first_affected(*first)

    # ------------------------------------------------------------------ one case
    def run(self, f: Fault, run_to_end: bool = True) -> dict:
        """One episode with fault ``f``; its row of the report."""
        s, p = self.s, self.p
        t_case = time.monotonic()
        start = s.begin(self.seed)
        trigger = self.trigger(fast=f.kind == "estop") if f.kind != "none" else "none"
        before = self.latest_status(start) or {}
        with p.lock:
            speed = p.joints[-1][1] if p.joints else float("nan")
            restarts0 = p.sim_restarts
            fault_sim_s = p.latest_ns / 1e9
        log.info("%s: injecting (%s, joint speed %.2f rad/s)", f.name, trigger, speed)
        tl = self.apply(f)
        self.wait_recovery(tl.t_clear)
        sim_killed = p.sim_restarts > restarts0
        final, reason = None, "sim restarted"
        if not sim_killed:
            try:
                if run_to_end:
                    final, reason = s.run_to_end(start, 300.0)
                else:
                    p.end_episode()
                    final = s.wait("the final scores", lambda: s.final_status(start), 30.0)
                    reason = "ended by the driver"
            except DriverError as exc:
                log.warning("%s: %s", f.name, exc)
                reason = str(exc)
        try:
            s.set_planner(False)
        except DriverError as exc:
            log.warning("%s: %s", f.name, exc)
        with p.lock:
            arm, joints = list(p.arm), list(p.joints)
        # the hold must last until the fault clears (or the killed node is back)
        kills = self.sim_kills
        hold = hold_ms(arm, joints, tl.t_fault, tl.t_clear, kills) if f.kind != "none" else None
        settle = settled_ms(joints, tl.t_fault, tl.t_clear) if f.kind != "none" else None
        rec = recovery_ms(arm, joints, tl.t_clear, kills)
        objects = int(before.get("objects", (final or {}).get("objects", 0)))
        if sim_killed:
            after = self.latest_status() or {}
            lost = objects - int(before.get("cleared", 0))
            row_violations = violations(before) + violations(after)
            cleared, dropped = int(before.get("cleared", 0)), int(before.get("dropped", 0))
            completed = False
            tl.notes.append(
                "the simulator is the arm: it stops with its process; its world "
                "starts again, so the episode's objects not yet cleared are lost"
            )
        else:
            lost = 0
            row_violations = violations(final)
            cleared = int((final or {}).get("cleared", 0))
            dropped = int((final or {}).get("dropped", 0))
            completed = bool(final) and cleared == objects
        kinds = (before if sim_killed else final or {}).get("safety", {})
        row = {
            "fault": f.name,
            "description": f.description,
            "violations": row_violations,
            "violations_by_kind": {k: v for k, v in kinds.items() if v},
            "hold_ms": hold,
            "settled_ms": settle,
            "recovery_ms": rec,
            "dropped": dropped,
            "lost": lost,
            "completed": completed,
            "cleared": cleared,
            "objects": objects,
            "cleared_before_fault": int(before.get("cleared", 0)),
            "expect_hold": f.expect_hold,
            "trigger": trigger,
            "joint_speed_at_fault_rad_s": speed,
            "fault_s": round((tl.t_clear - tl.t_fault) / 1e9, 3),
            "planner_phases_after_fault": phases_after(p.phases, tl.t_fault),
            "flow_10s_after_clear": flow(p, tl.t_clear),
            "violations_at_s_after_fault": violation_times(p, start, fault_sim_s),
            "moves_after_fault": (
                moves_after(arm, joints, tl.t_on, tl.t_clear, kills) if f.kind != "none" else []
            ),
            "first_affected_after_switch_ms": round((tl.t_fault - tl.t_on) / 1e6, 1),
            "hold_from_switch_ms": (
                hold_ms(arm, joints, tl.t_on, tl.t_clear, kills) if f.kind != "none" else None
            ),
            "end_reason": reason,
            "wall_s": round(time.monotonic() - t_case, 1),
            "notes": tl.notes,
            **tl.extra,
        }
        row["meets_targets"] = meets(row)
        log.info("%s: %s", f.name, {k: row[k] for k in TABLE_KEYS})
        return row


TABLE_KEYS = ("violations", "hold_ms", "settled_ms", "recovery_ms", "dropped", "lost", "completed")


def meets(row: dict) -> bool:
    ok = row["violations"] == 0 and row["dropped"] == 0
    if row["expect_hold"]:
        ok = ok and row["hold_ms"] is not None and row["hold_ms"] <= HOLD_TARGET_MS
    if row["fault"] != "none":
        rec = row["recovery_ms"]
        ok = ok and rec is not None and rec <= RECOVERY_TARGET_MS
    return ok and row.get("moves_while_estopped", 0) == 0


def run_chaos(
    out_dir: Path,
    faults: tuple[Fault, ...] = FAULTS,
    seed: int = 100000,
    objects: int = 2,
    overrides: dict[str, dict] | None = None,
    run_to_end: bool = True,
    progress: Callable[[dict], None] | None = None,
) -> dict:
    """Start the chaos stack, run each fault (one episode each), write ``chaos.json`` and
    ``chaos.md`` in ``out_dir``; returns the report."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    load0 = os.getloadavg()
    merged = {"wm_sim": {"n_objects": objects}}
    for node, params in (overrides or {}).items():
        merged.setdefault(node, {}).update(params)
    session, startup_s = start(seed, merged, out_dir / "logs")
    rows = []
    try:
        chaos = Chaos(session, seed, seed)
        for f in faults:
            rows.append(chaos.run(f, run_to_end))
            if progress is not None:
                progress(rows[-1])
    finally:
        stop(session)
    report = {
        "seed": seed,
        "objects": objects,
        "faults": rows,
        "targets": {
            "violations": 0,
            "hold_ms": HOLD_TARGET_MS,
            "recovery_ms": RECOVERY_TARGET_MS,
            "dropped": 0,
        },
        "all_targets_met": all(r["meets_targets"] for r in rows),
        "definitions": {
            "hold_ms": "fault in effect (relay faults: the first message it dropped, delayed or "
            "changed; else the SIGKILL, e-stop or hog start) -> end of the last arm command that "
            "moved the arm "
            f"(first point > {MOVE_RAD} rad from the measured joints) before the fault cleared",
            "settled_ms": f"fault in effect -> every joint speed < {REST_RAD_S} rad/s until it "
            "cleared",
            "recovery_ms": "fault cleared (or the killed node's first output after its respawn) "
            "-> the first arm command that moves the arm",
            "moves_after_fault": "[ms after the fault, largest joint gap to the measured "
            "joints (rad), duration (ms: its last point's time)] of each arm command that moved "
            "the arm before the fault cleared",
            "clock": "wall clock, DDS source timestamps of the sim, safety node and relay",
        },
        "startup_s": round(startup_s, 1),
        "wall_s": round(time.monotonic() - t0, 1),
        "loadavg_start": [round(x, 2) for x in load0],
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
    }
    (out_dir / "chaos.json").write_text(json.dumps(finite_json(report), indent=2) + "\n")
    (out_dir / "chaos.md").write_text(markdown(report))
    return report


def _ms(v: float | None) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:.0f}"


def markdown(report: dict) -> str:
    """The Markdown table of a chaos report (what the README quotes)."""
    lines = [
        "| fault | violations | hold ms | arm at rest ms | recovery ms | objects dropped / "
        "lost | episode completed | targets |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["faults"]:
        hold = _ms(r["hold_ms"]) if r["expect_hold"] else "not needed"
        rec = _ms(r["recovery_ms"]) if r["fault"] != "none" else "—"
        done = f"{'yes' if r['completed'] else 'no'} ({r['cleared']}/{r['objects']})"
        extra = ""
        if "moves_while_estopped" in r:
            extra = f"; {r['moves_while_estopped']} moves while latched"
        lines.append(
            f"| {r['fault']} | {r['violations']} | {hold} | {_ms(r['settled_ms'])} | {rec} | "
            f"{r['dropped']} / {r['lost']} | {done} | {'met' if r['meets_targets'] else 'MISSED'}"
            f"{extra} |"
        )
    return "\n".join(lines) + "\n"
