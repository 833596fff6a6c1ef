"""``wm_safety``: the hard safety filter between the planner and the arm.

``/wm/plan_cmd`` (JointTrajectory) -> ``wm_core.safety.SafetyFilter`` -> the arm's
``/arm_controller/joint_trajectory``; this node is the only publisher there. Per command, each
point goes through the filter in turn (joint limits, joint velocity and tool speed clamps,
table and keep-out intrusion, staleness of the command stamp and of the joint state); the
output is re-timed to at least ``control_dt`` per point, after what is left of the motion
already sent (so a burst of commands cannot outrun the speed limits), and, where the arm's
controller reports its reference on ``/arm_controller/reference`` (``wm_sim`` does), its
first point no sooner than the tool can reach it at ``tool_speed_limit`` from every position
the controller may be at on receipt (``wm_core.safety.pacing``: the controller starts from its
own reference, which lags the last target by up to a step when a command reached it a
``/clock`` tick later than this node's clock said); it stops before the first point the filter
holds. The next command's velocity clamp starts from the first output
point (commands are replanned every step).

The arm command keeps a zero stamp (start on receipt), so its timing never depends on the arm's
clock agreeing with ours. Which camera frame a command came from goes out beside it instead:
right after each arm command made from a planner command, ``/wm/safety/command_source``
(std_msgs/Header) carries that planner command's stamp, the source image's. An evaluator pairs
it with the frame to measure the end-to-end latency (``wm_bringup.episodes``).

Holds (a one-point trajectory, suction unchanged; where, below):

- **watchdog**: a timer checks every ``watchdog_period_s`` that a command and a joint state
  arrived within ``stale_after_s``; if not, it holds (once, until commands resume) at the last
  point it sent, where the arm's controller is headed and stays (at the measured joints if
  the arm is a re-sync away from that point, or nothing was sent since activation). While the
  joint states stay stale after that hold, commands get no answer at all: the arm's controller
  holds by itself, and a hold sent then could reach a restarted controller before its first
  joint state reaches this node, and move its arm to a target of before the restart;
- **e-stop**: ``/wm/estop`` (std_msgs/Bool) ``true`` latches the stop: every command holds.
  ``false`` does *not* release it. Release explicitly with the parameter
  ``ros2 param set /wm_safety release_estop true`` (the node sets it back to false);
- **re-sync**: when the arm is more than ``resync_tolerance_rad`` from the last safe command
  (an episode reset, a hand-guided move, a collision), the filter restarts from the measured
  joints with a hold. So it does when ``/joint_states`` comes from another publisher than
  before, the old one silent for ``stale_after_s`` (the arm's driver or controller restarted:
  it now holds where it is, and the last safe command means nothing to it), whatever the gap:
  a hold at the old target would move an arm that a restart left a little elsewhere, also
  while the e-stop is latched. Two live publishers are reported as an error, not re-synced.
  The publisher is the message's gid (``MessageInfo``), or where rclpy gives none (Jazzy) a
  publisher new in the ROS graph after the gap.

**Shadow mode** (``shadow: true``, read-only; ``real.launch.py shadow:=true``): every command
is judged exactly as above, but what would go to the arm is published on
``/wm/shadow/joint_trajectory`` instead (with the suction as the ``suction_cup`` joint), beside
``/wm/safety/command_source`` and the diagnostics; the node then has no publisher on the arm
or suction topics at all. The arm stays where it is, so the filter's lead limit keeps every
shadow command within ``max_tool_lead`` of the measured tool: each one is the first step the
stack would take from the arm's actual pose.

**Who commands the arm.** Commands are taken only from the planner topic (``/wm/plan_cmd``,
remappable): it is the node's one JointTrajectory subscription. Without DDS security (SROS2
enclaves, README "DDS security") any participant could still publish on the arm's topic
itself, so every ``publisher_check_period_s`` the node lists the publishers there and reports
any other than itself as a diagnostic ERROR (``foreign_arm_publishers``), logged once per
change (:mod:`wm_safety.publishers`). Shadow mode skips the check: the arm topic is not its own.

**Joint names**: ``joint_names`` (read-only) names the URDF's six joints as the arm's driver
does; the commands use those names, and joint states must carry them.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.subscription import MessageInfo
from rclpy.time import Time
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Header
from trajectory_msgs.msg import JointTrajectory
from wm_bringup.msgs import (
    REFERENCE_TOPIC,
    NonFiniteError,
    is_zero,
    joint_state_arrays,
    make_trajectory,
    parse_trajectory,
    publisher_of,
)
from wm_bringup.nodekit import (
    CELL_FILE,
    JOINT_NAMES,
    RELIABLE_QOS,
    Param,
    WmNode,
    cell_of,
    guarded_transition,
    joint_names_of,
    run_node,
)

from wm_core.cell import Workcell
from wm_core.robot.limits import CONTROL_HZ
from wm_core.safety import FilterConfig, SafetyFilter
from wm_core.safety.pacing import FirstPointPacer
from wm_core.viz.record import verdict_of
from wm_safety.joint_sources import JointStateSources
from wm_safety.publishers import foreign_publishers

ARM_TOPIC = "/arm_controller/joint_trajectory"
SUCTION_TOPIC = "/suction/command"
SHADOW_TOPIC = "/wm/shadow/joint_trajectory"


@dataclass(frozen=True)
class SafetyNodeConfig:
    filter: FilterConfig
    cell: Workcell
    watchdog_period_s: float
    publisher_check_period_s: float
    resync_tolerance_rad: float
    suction_in_trajectory: bool
    shadow: bool
    joint_names: tuple[str, ...]


class SafetyNode(WmNode):
    PARAMS = (
        Param.of(FilterConfig, "joint_margin"),
        Param.of(FilterConfig, "velocity_scale"),
        Param(
            "control_hz", 10.0, "Command rate (Hz): the step clamp is velocity / rate.", *CONTROL_HZ
        ),
        Param.of(FilterConfig, "table_clearance"),
        Param.of(FilterConfig, "tool_speed_limit"),
        Param.of(FilterConfig, "max_tool_lead"),
        Param.of(FilterConfig, "tool_accel_limit"),
        Param.of(FilterConfig, "stale_after_s"),
        CELL_FILE,
        Param("watchdog_period_s", 0.05, "Period of the staleness watchdog (s).", 0.005, 1.0),
        Param(
            "publisher_check_period_s",
            1.0,
            "Period of the check for other publishers on the arm topic (s).",
            0.1,
            60.0,
        ),
        Param(
            "resync_tolerance_rad", 0.5, "Arm-vs-last-command gap that re-syncs (rad).", 0.05, 6.3
        ),
        Param(
            "suction_in_trajectory",
            True,
            "Send suction as the suction_cup joint (else on /suction/command).",
        ),
        Param("release_estop", False, "Set true to release a latched e-stop (resets to false)."),
        Param(
            "shadow",
            False,
            f"Shadow mode: judge every command but publish it on {SHADOW_TOPIC}, and nothing "
            "on the arm or suction topics.",
            read_only=True,
        ),
        JOINT_NAMES,
    )

    def __init__(self, node_name: str = "wm_safety", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.names = self.config.joint_names
        self.filter: SafetyFilter | None = None
        self.q: np.ndarray | None = None  # [6] measured joints
        self.suction_meas: bool | None = None
        self.js_time: Time | None = None
        self.cmd_time: Time | None = None
        self.holding: str | None = "no command yet"
        self.stats: dict[str, Any] = {"commands": 0, "sent": 0, "holds": 0, "malformed": 0}
        self.stats["bad_joint_states"] = 0
        self.stats["joint_state_sources"] = 0  # changes of the /joint_states publisher
        self.stats["holds_unsent"] = 0  # answers not sent: no fresh joint state since a hold
        self.stats["joint_state_clashes"] = 0  # messages from a second live publisher
        self.js_sources: JointStateSources | None = None  # who publishes /joint_states
        self.last_status = ""
        self.foreign: list[str] = []  # other publishers on the arm topic, as last seen
        self.publisher_check = None
        self.motion_end: Time | None = None  # when the arm reaches the last target sent
        self.motion_s = 0.0  # how long that motion was
        self.sent_end: np.ndarray | None = None  # [6] last point sent: where the arm is headed
        self.add_post_set_parameters_callback(self._after_set)

    def build_config(self, values: dict[str, Any]) -> SafetyNodeConfig:
        super().build_config(values)
        return SafetyNodeConfig(
            filter=FilterConfig(
                joint_margin=values["joint_margin"],
                velocity_scale=values["velocity_scale"],
                control_dt=1.0 / values["control_hz"],
                table_clearance=values["table_clearance"],
                tool_speed_limit=values["tool_speed_limit"],
                max_tool_lead=values["max_tool_lead"],
                tool_accel_limit=values["tool_accel_limit"],
                stale_after_s=values["stale_after_s"],
            ),
            cell=cell_of(values),
            watchdog_period_s=values["watchdog_period_s"],
            publisher_check_period_s=values["publisher_check_period_s"],
            resync_tolerance_rad=values["resync_tolerance_rad"],
            suction_in_trajectory=values["suction_in_trajectory"],
            shadow=values["shadow"],
            joint_names=joint_names_of(values),
        )

    # ------------------------------------------------------------------ lifecycle
    @guarded_transition
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.config = cfg = self.build_config(self.values())
        # The filter's forward kinematics are tiny torch ops: a second intra-op thread only
        # spin-waits between them (wm bench stack: this node fell from 49 % to 10 % of a core).
        torch.set_num_threads(1)
        self.filter = SafetyFilter(cfg.filter, cfg.cell)
        self.dt = cfg.filter.control_dt
        # a command may reach the controller a /clock tick later than our clock says
        self.pacer = FirstPointPacer(self.filter.kin, cfg.filter.tool_speed_limit, self.dt)
        # shadow: no endpoint on the arm or suction topics at all, the shadow topic instead
        arm_topic = SHADOW_TOPIC if cfg.shadow else ARM_TOPIC
        self.pub_arm = self.create_lifecycle_publisher(JointTrajectory, arm_topic, RELIABLE_QOS)
        self.pub_suction = None
        if not cfg.shadow and not cfg.suction_in_trajectory:
            self.pub_suction = self.create_lifecycle_publisher(Bool, SUCTION_TOPIC, RELIABLE_QOS)
        self.pub_source = self.create_lifecycle_publisher(
            Header, "/wm/safety/command_source", RELIABLE_QOS
        )
        self.pub_verdict = self.create_lifecycle_publisher(
            Header, "/wm/safety/verdict", RELIABLE_QOS
        )
        self.subs = [
            self.create_subscription(JointState, "/joint_states", self._on_joints, RELIABLE_QOS),
            self.create_subscription(JointState, REFERENCE_TOPIC, self._on_reference, RELIABLE_QOS),
            self.create_subscription(
                JointTrajectory, "/wm/plan_cmd", self._on_command, RELIABLE_QOS
            ),
            self.create_subscription(Bool, "/wm/estop", self._on_estop, RELIABLE_QOS),
        ]
        self.js_sources = JointStateSources(
            cfg.filter.stale_after_s, self._joint_state_publishers, self.get_logger()
        )
        self.watchdog = self.create_timer(cfg.watchdog_period_s, self._on_watchdog)
        if not cfg.shadow:
            self.publisher_check = self.create_timer(
                cfg.publisher_check_period_s, self._check_publishers
            )
        if cfg.shadow:
            self.get_logger().warning(
                f"SHADOW MODE: judging every command, publishing on {SHADOW_TOPIC}; nothing "
                "goes to the arm or the suction"
            )
        self.get_logger().info(
            f"safety filter ready: stale after {cfg.filter.stale_after_s} s, cell "
            f"{cfg.cell.source or cfg.cell.name}: {len(cfg.cell.keepout_boxes)} keep-out "
            f"box(es), {len(cfg.cell.obstacles)} obstacle box(es)"
        )
        return TransitionCallbackReturn.SUCCESS

    @guarded_transition
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.activated_at = self.get_clock().now()
        self.sent_end = None  # the arm may have been moved by something else meanwhile
        return super().on_activate(state)

    @guarded_transition
    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.destroy_timer(self.watchdog)
        if self.publisher_check is not None:
            self.destroy_timer(self.publisher_check)
            self.publisher_check = None
        self.foreign = []
        for s in self.subs:
            self.destroy_subscription(s)
        self.destroy_lifecycle_publisher(self.pub_arm)
        if self.pub_suction is not None:
            self.destroy_lifecycle_publisher(self.pub_suction)
        self.destroy_lifecycle_publisher(self.pub_source)
        self.destroy_lifecycle_publisher(self.pub_verdict)
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def release(self) -> None:
        self.filter = None

    def _after_set(self, params: list[Parameter]) -> None:
        for p in params:
            if p.name == "release_estop" and p.value:
                if self.filter is not None and self.filter.estopped is not None:
                    self.filter.release()
                    self.get_logger().warning("e-stop released by parameter release_estop")
                self._reset_timer = self.create_timer(0.0, self._reset_release_flag)

    def _reset_release_flag(self) -> None:
        self.destroy_timer(self._reset_timer)
        self.set_parameters([Parameter("release_estop", value=False)])

    # ------------------------------------------------------------------ inputs
    def _age(self, t: Time | None) -> float:
        """Seconds since ``t`` (a receipt time on our clock); inf when there is none, or when
        the clock has jumped back past it (a restarted simulator, a clock correction): how old
        that input is can no longer be told, so it counts as stale."""
        if t is None:
            return float("inf")
        age = (self.get_clock().now() - t).nanoseconds * 1e-9
        return age if age >= 0.0 else float("inf")

    def _stamp_age(self, stamp) -> float:
        """Seconds since a message's header stamp. A stamp slightly ahead of our clock (the
        clock message still in flight) is fresh; one more than ``stale_after_s`` ahead comes
        from before a backwards clock jump (or a broken clock) and counts as stale."""
        t = Time.from_msg(stamp, clock_type=self.get_clock().clock_type)
        age = (self.get_clock().now() - t).nanoseconds * 1e-9
        if age < -self.config.filter.stale_after_s:
            return float("inf")
        return max(0.0, age)

    def _on_joints(self, msg: JointState, info: MessageInfo) -> None:
        try:
            q, suction = joint_state_arrays(msg, self.names)
        except NonFiniteError as exc:
            # a failing encoder: nothing measured can be trusted until a finite state arrives
            self.js_time = None
            self.stats["bad_joint_states"] += 1
            self.get_logger().error(
                f"joint state not finite: holding ({exc})", throttle_duration_sec=2.0
            )
            why = "joint state not finite"  # one hold, not one per message
            ready = self.active and self.filter is not None and self.q is not None
            if ready and self.holding != why:
                self._hold(why, measured=False)
            return
        except ValueError as exc:
            self.get_logger().warning(f"ignored joint state: {exc}", throttle_duration_sec=2.0)
            return
        self.q, self.suction_meas = q, suction
        self.js_time = self.get_clock().now()
        restarted = self.js_sources.restarted(publisher_of(info), time.monotonic())
        self.stats["joint_state_clashes"] = self.js_sources.clashes  # a second live publisher
        flt = self.filter
        if flt is not None and flt.last_q is not None and self.active:
            gap = float(np.abs(self.q - flt.last_q).max())
            if restarted:
                self.stats["joint_state_sources"] += 1
                self.get_logger().warning(
                    f"joint states from a new publisher (the arm's driver restarted?), "
                    f"{gap:.3f} rad from the last safe command: re-syncing, holding"
                )
                self._hold("re-sync: new joint-state source", resync=True)
            elif gap > self.config.resync_tolerance_rad:
                self.get_logger().warning(
                    f"the arm is {gap:.2f} rad from the last safe command: re-syncing, holding"
                )
                self._hold("re-sync", resync=True)

    def _joint_state_publishers(self) -> set[bytes]:
        topic = self.subs[0].topic_name  # /joint_states as remapped
        return {bytes(i.endpoint_gid) for i in self.get_publishers_info_by_topic(topic)}

    def _on_reference(self, msg: JointState) -> None:
        if self.filter is None:
            return
        try:
            q, _ = joint_state_arrays(msg, self.names)
        except ValueError as exc:  # NonFiniteError included: keep the last good reference
            self.get_logger().warning(f"ignored reference: {exc}", throttle_duration_sec=2.0)
            return
        self.pacer.reference(q, Time.from_msg(msg.header.stamp).nanoseconds * 1e-9)

    def _on_estop(self, msg: Bool) -> None:
        if self.filter is None:
            return
        if msg.data:
            latched = self.filter.estopped is not None
            self.filter.estop("/wm/estop")
            if not latched:
                self._hold("e-stop", resync=True)  # where the arm is
        elif self.filter.estopped is not None:
            self.get_logger().info(
                "e-stop stays latched: set the parameter release_estop to true to release it",
                throttle_duration_sec=5.0,
            )

    def _on_command(self, msg: JointTrajectory) -> None:
        if not self.active or self.filter is None:
            return
        self.stats["commands"] += 1
        self.cmd_time = self.get_clock().now()
        if self.q is None:
            self.get_logger().warning(
                "no joint state yet: command dropped", throttle_duration_sec=2.0
            )
            return
        try:
            traj = parse_trajectory(msg, self.names)
        except ValueError as exc:
            self.stats["malformed"] += 1
            self.get_logger().warning(f"malformed command held: {exc}", throttle_duration_sec=2.0)
            self._hold("malformed command")
            return
        stamp = msg.header.stamp
        source = None if is_zero(stamp) else msg.header
        if len(traj.times) == 0:
            self._hold("empty command (stop)", source=source)
            return
        cmd_age = 0.0 if is_zero(stamp) else self._stamp_age(stamp)
        state_age = self._age(self.js_time)
        flt = self.filter
        if self.holding and flt.estopped is None and state_age <= self.config.filter.stale_after_s:
            # Resuming after a hold: the arm settled where it is, not at the last safe
            # command (a position controller under load sags; the arm's own cmd_timeout holds
            # at the measured joints). The limits of the next step start from there, or the
            # first step would add that gap to a full step (tool-speed events in wm chaos).
            flt.resume_from(self.q, flt.last_suction)
        elif self.motion_end is not None:
            idle = (self.get_clock().now() - self.motion_end).nanoseconds * 1e-9
            if idle > 0.5 * self.dt:
                # the arm stopped at the last target (a skipped frame, a short stall): a full
                # step from standstill overshoots the tool speed limit (seen in wm chaos with
                # every other frame dropped); accelerate from rest
                flt.at_rest()
        passed, held = [], None
        for k in range(len(traj.times)):
            s = bool(traj.suction[k]) if traj.suction is not None else flt.last_suction
            res = flt.filter(traj.positions[k], s, self.q, cmd_age, state_age)
            if not res.passed:
                held = res
                break
            passed.append(res)
        if held is not None:
            self.last_status = f"{held.status}: {', '.join(held.reasons)}"
            self.get_logger().warning(
                f"command held ({self.last_status})", throttle_duration_sec=2.0
            )
        if not passed:
            if self.holding and state_age > self.config.filter.stale_after_s:
                # No fresh joint state since the hold that went out when they stopped: the
                # arm's controller holds by itself (cmd_timeout). Another hold could reach a
                # restarted controller before its first joint state does and move its arm to
                # a target of before the restart.
                self.stats["holds_unsent"] += 1
                return
            if held.q is None:  # nothing safe sent yet: hold where the arm is
                self._hold(held.status, source=source)
            else:
                self._send(held.q[None], [held.suction], [self.dt], source, held.status)
                self.stats["holds"] += 1
            return
        times = [max(float(t), (k + 1) * self.dt) for k, t in enumerate(traj.times[: len(passed)])]
        if self.pacer.ref_tool is None:
            # no controller reference to time it from: wait for what is left of the motion
            # already sent (with one, the pacer alone times the first point from where the
            # controller is: adding this as well held a stack's commands at up to 0.3 s)
            times = self._paced(times)
        qs = np.array([r.q for r in passed])  # [P, 6]
        first = self.pacer.first_time(qs[0], self._now_s(), times[0])
        times = [t + first - times[0] for t in times]
        self._send(qs, [r.suction for r in passed], times, source, passed[0].status)
        flt.resume_from(passed[0].q, passed[0].suction)  # commands are replanned every step
        self.last_status = passed[0].status if held is None else self.last_status
        if self.holding:
            self.get_logger().info(f"commands resumed (was holding: {self.holding})")
        self.holding = None

    def _on_watchdog(self) -> None:
        if not self.active or self.filter is None or self.q is None or self.holding:
            return
        stale = self.config.filter.stale_after_s
        cmd_age, state_age = self._age(self.cmd_time), self._age(self.js_time)
        if self.cmd_time is None:
            cmd_age = self._age(self.activated_at)
        if cmd_age > stale or state_age > stale:
            flt = self.filter
            q_last = flt.last_q if flt.last_q is not None else self.q
            flt.filter(q_last, flt.last_suction, self.q, cmd_age, state_age)  # counts the hold
            what = "commands" if cmd_age > stale else "joint states"
            # Hold where the arm's controller is headed: the last point sent, which passed the
            # filter and where a joint_trajectory_controller stays once the trajectory ends.
            # The measured joints are a joint-state period or two old: a hold there pulls an
            # arm still settling back toward where it was (wm chaos, kill_perception: 5 mrad
            # under a held object). Not when the arm is a re-sync away from it.
            end = self.sent_end
            gap = float("inf") if end is None else float(np.abs(end - self.q).max())
            target = end if gap <= self.config.resync_tolerance_rad else None
            self.get_logger().warning(
                f"watchdog: {what} stopped ({max(cmd_age, state_age):.2f} s): holding (joint "
                f"states {state_age:.2f} s old, {gap:.4f} rad from the last point sent)"
            )
            self._hold(f"{what} stale", measured=state_age <= stale, target=target)

    def _check_publishers(self) -> None:
        """Report publishers on the arm topic other than this node (once per change)."""
        topic = self.pub_arm.topic_name
        infos = self.get_publishers_info_by_topic(topic)
        own = (self.get_name(), self.get_namespace())
        foreign = foreign_publishers(((i.node_name, i.node_namespace) for i in infos), own)
        if foreign != self.foreign:
            if foreign:
                self.get_logger().error(
                    f"other publisher(s) on the arm topic {topic}: {', '.join(foreign)}; only "
                    "this node may command the arm (run with SROS2 enclaves to enforce it)"
                )
            else:
                self.get_logger().info(f"no other publisher on the arm topic {topic} any more")
        self.foreign = foreign

    # ------------------------------------------------------------------ outputs
    def _hold(
        self,
        why: str,
        measured: bool = True,
        source: Header | None = None,
        resync: bool = False,
        target: np.ndarray | None = None,
    ) -> None:
        """Hold at the measured joints (or, if those are stale, at the last safe command).
        While the e-stop is latched, at the hold target it latched unless ``resync`` (re-aiming
        it at the joints of an arm still coming to rest, or sagging under a load, would move
        the arm while latched). ``source``: the header of the planner command this hold
        answers (None: no command). ``target``: hold there instead (a point already sent),
        unless latched."""
        flt = self.filter
        fresh = self._age(self.js_time) <= self.config.filter.stale_after_s
        if not fresh and self.holding:
            # No fresh joint state since a hold went out: the arm's controller holds by itself
            # (cmd_timeout), and another hold could reach a restarted controller before its
            # first joint state reaches us, moving its arm to a target of before the restart.
            self.stats["holds_unsent"] += 1
            return
        measured = measured and fresh and (resync or flt.estopped is None)
        q = self.q if measured or flt.last_q is None else flt.last_q
        if target is not None and flt.estopped is None:
            q = target
        if q is None:  # nothing measured, nothing sent: no target a hold could keep
            self.holding, self.last_status = why, f"hold: {why}"
            return
        suction = self.suction_meas if self.suction_meas is not None else flt.last_suction
        flt.resume_from(q, bool(suction))
        self.holding = why
        self.last_status = f"hold: {why}"
        self.stats["holds"] += 1
        self._send(np.asarray(q, float)[None], [bool(suction)], [self.dt], source)

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _paced(self, times: list[float]) -> list[float]:
        """Point times of a passed command, delayed by what is left of the motion already sent.

        The filter clamps each step to what the speed limits allow in ``control_dt``, from the
        last command's target. A command that arrives before the arm got there (a burst of
        plans after a stall: measured 12-30 ms apart under ``wm chaos``) would otherwise make
        the arm cover the rest of the last step *and* this one within one period: up to
        several times the tool speed limit (a tool-speed event in the simulator)."""
        left = 0.0
        if self.motion_end is not None:
            left = (self.motion_end - self.get_clock().now()).nanoseconds * 1e-9
            left = min(max(left, 0.0), self.motion_s)  # a clock jumped back: at most one motion
        return [t + left for t in times]

    def _send(
        self,
        qs: np.ndarray,
        suction: list[bool],
        times: list[float],
        source: Header | None = None,
        status: str = "held",
    ) -> None:
        """qs [P, 6] -> the arm (zero stamp: start on receipt), then ``source`` (the planner
        command's header) on ``/wm/safety/command_source`` and the verdict (from the filter's
        ``status``) on ``/wm/safety/verdict``. In shadow mode the trajectory, with
        the suction as its ``suction_cup`` joint, goes to the shadow topic instead."""
        if not self.active:
            return
        with_suction = self.config.suction_in_trajectory or self.config.shadow
        self.publish(
            self.pub_arm, make_trajectory(self.names, qs, times, suction if with_suction else None)
        )
        if self.pub_suction is not None:
            self.publish(self.pub_suction, Bool(data=bool(suction[0])))
        if source is not None:
            self.publish(self.pub_source, Header(stamp=source.stamp, frame_id=source.frame_id))
            self.publish(self.pub_verdict, Header(stamp=source.stamp, frame_id=verdict_of(status)))
        self.stats["sent"] += 1
        self.sent_end = np.array(qs[-1], float)
        self.pacer.sent(qs, self._now_s())
        self.motion_s = float(times[-1])
        self.motion_end = self.get_clock().now() + Duration(seconds=self.motion_s)

    def diagnostics(self):
        level, message, kv = super().diagnostics()
        flt = self.filter
        if flt is not None:
            if flt.estopped is not None:
                level, message = DiagnosticStatus.ERROR, f"e-stop latched ({flt.estopped})"
            elif self.holding:
                level, message = DiagnosticStatus.WARN, f"holding: {self.holding}"
            kv |= {f"filter_{k}": v for k, v in flt.counts.items()}
        if self.foreign:
            foreign = f"other publisher(s) on the arm topic: {', '.join(self.foreign)}"
            message = foreign if level != DiagnosticStatus.ERROR else f"{message}; {foreign}"
            level = DiagnosticStatus.ERROR
        if self.config.shadow:
            message = f"shadow mode ({message})"
        kv["foreign_arm_publishers"] = ",".join(self.foreign)
        kv |= self.stats | {"last_status": self.last_status, "shadow": self.config.shadow}
        return level, message, kv


NODE_CLASS = SafetyNode


def main(args: list[str] | None = None) -> None:
    raise SystemExit(run_node(SafetyNode, sys.argv if args is None else args))


if __name__ == "__main__":
    main()
