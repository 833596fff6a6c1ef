"""``wm_safety``: the hard safety filter between the planner and the arm.

``/wm/plan_cmd`` (JointTrajectory) -> :class:`wm_safety.gate.CommandGate` (the filter
``wm_core.safety.SafetyFilter``, the first-point pacing, the holds: watchdog, e-stop, re-sync;
its docstring says when each happens) -> the arm's ``/arm_controller/joint_trajectory``; this
node is the only publisher there. It subscribes to ``/joint_states``, the controller's
reference (``/arm_controller/reference``), the planner's commands and ``/wm/estop``, runs the
watchdog timer every ``watchdog_period_s``, and publishes what the gate decides.

The arm command keeps a zero stamp (start on receipt), so its timing never depends on the arm's
clock agreeing with ours. Which camera frame a command came from goes out beside it instead:
right after each arm command made from a planner command, ``/wm/safety/command_source``
(std_msgs/Header) carries that planner command's stamp, the source image's. An evaluator pairs
it with the frame to measure the end-to-end latency (``wm_bringup.episodes``).

**E-stop**: ``/wm/estop`` (std_msgs/Bool) ``true`` latches the stop: every command holds.
``false`` does *not* release it. Release explicitly with the parameter
``ros2 param set /wm_safety release_estop true`` (the node sets it back to false).

**A restarted arm driver** is told by the publisher of ``/joint_states``: the message's gid
(``MessageInfo``), or where rclpy gives none (Jazzy) a publisher new in the ROS graph after the
gap (``wm_safety.joint_sources``). Two live publishers are reported as an error, not re-synced.

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

import torch
from diagnostic_msgs.msg import DiagnosticStatus
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
from wm_core.safety import FilterConfig
from wm_core.viz.record import verdict_of
from wm_safety.gate import CommandGate, Output
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
        self.gate: CommandGate | None = None  # the decisions, once configured
        self.stats: dict[str, Any] = {"commands": 0, "sent": 0, "holds": 0, "malformed": 0}
        self.stats["bad_joint_states"] = 0
        self.stats["joint_state_sources"] = 0  # changes of the /joint_states publisher
        self.stats["holds_unsent"] = 0  # answers not sent: no fresh joint state since a hold
        self.stats["joint_state_clashes"] = 0  # messages from a second live publisher
        self.js_sources: JointStateSources | None = None  # who publishes /joint_states
        self.foreign: list[str] = []  # other publishers on the arm topic, as last seen
        self.publisher_check = None
        self.add_post_set_parameters_callback(self._after_set)

    # the gate's state, as the tests and diagnostics read it
    filter = property(lambda self: None if self.gate is None else self.gate.filter)
    pacer = property(lambda self: None if self.gate is None else self.gate.pacer)
    q = property(lambda self: None if self.gate is None else self.gate.q)
    holding = property(lambda self: "no command yet" if self.gate is None else self.gate.holding)

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
        self.gate = CommandGate(
            cfg.filter, cfg.cell, cfg.resync_tolerance_rad, self._now_s, self._send,
            self.get_logger(), self.stats,
        )  # fmt: skip
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
        self.gate.activated()
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
        self.gate = None

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
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_joints(self, msg: JointState, info: MessageInfo) -> None:
        gate = self.gate
        if gate is None:
            return
        try:
            q, suction = joint_state_arrays(msg, self.names)
        except NonFiniteError as exc:
            self.stats["bad_joint_states"] += 1
            self.get_logger().error(
                f"joint state not finite: holding ({exc})", throttle_duration_sec=2.0
            )
            gate.bad_joints("joint state not finite", self.active)
            return
        except ValueError as exc:
            self.get_logger().warning(f"ignored joint state: {exc}", throttle_duration_sec=2.0)
            return
        restarted = self.js_sources.restarted(publisher_of(info), time.monotonic())
        self.stats["joint_state_clashes"] = self.js_sources.clashes  # a second live publisher
        if gate.joints(q, suction, restarted, self.active):
            self.stats["joint_state_sources"] += 1

    def _joint_state_publishers(self) -> set[bytes]:
        topic = self.subs[0].topic_name  # /joint_states as remapped
        return {bytes(i.endpoint_gid) for i in self.get_publishers_info_by_topic(topic)}

    def _on_reference(self, msg: JointState) -> None:
        if self.gate is None:
            return
        try:
            q, _ = joint_state_arrays(msg, self.names)
        except ValueError as exc:  # NonFiniteError included: keep the last good reference
            self.get_logger().warning(f"ignored reference: {exc}", throttle_duration_sec=2.0)
            return
        self.gate.pacer.reference(q, Time.from_msg(msg.header.stamp).nanoseconds * 1e-9)

    def _on_estop(self, msg: Bool) -> None:
        if self.gate is None:
            return
        if msg.data:
            self.gate.estop("/wm/estop")
        elif self.gate.filter.estopped is not None:
            self.get_logger().info(
                "e-stop stays latched: set the parameter release_estop to true to release it",
                throttle_duration_sec=5.0,
            )

    def _on_command(self, msg: JointTrajectory) -> None:
        if not self.active or self.gate is None:
            return
        try:
            traj, why = parse_trajectory(msg, self.names), None
        except ValueError as exc:
            traj, why = None, str(exc)
        stamp = msg.header.stamp
        zero = is_zero(stamp)
        stamp_s = None if zero else Time.from_msg(stamp).nanoseconds * 1e-9
        self.gate.command(traj, None if zero else msg.header, stamp_s, why)

    def _on_watchdog(self) -> None:
        if self.active and self.gate is not None:
            self.gate.watchdog()

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
    def _send(self, o: Output) -> bool:
        """The gate's output -> the arm (zero stamp: start on receipt), then its ``source``
        (the planner command's header) on ``/wm/safety/command_source`` and the verdict on
        ``/wm/safety/verdict``. In shadow mode the trajectory, with the suction as its
        ``suction_cup`` joint, goes to the shadow topic instead. False when not active."""
        if not self.active:
            return False
        with_suction = self.config.suction_in_trajectory or self.config.shadow
        suction = o.suction if with_suction else None
        self.publish(self.pub_arm, make_trajectory(self.names, o.qs, o.times, suction))
        if self.pub_suction is not None:
            self.publish(self.pub_suction, Bool(data=bool(o.suction[0])))
        if o.source is not None:
            src = o.source
            self.publish(self.pub_source, Header(stamp=src.stamp, frame_id=src.frame_id))
            self.publish(self.pub_verdict, Header(stamp=src.stamp, frame_id=verdict_of(o.status)))
        return True

    def diagnostics(self):
        level, message, kv = super().diagnostics()
        gate = self.gate
        if gate is not None:
            if gate.filter.estopped is not None:
                level, message = DiagnosticStatus.ERROR, f"e-stop latched ({gate.filter.estopped})"
            elif gate.holding:
                level, message = DiagnosticStatus.WARN, f"holding: {gate.holding}"
            kv |= {f"filter_{k}": v for k, v in gate.filter.counts.items()}
        if self.foreign:
            foreign = f"other publisher(s) on the arm topic: {', '.join(self.foreign)}"
            message = foreign if level != DiagnosticStatus.ERROR else f"{message}; {foreign}"
            level = DiagnosticStatus.ERROR
        if self.config.shadow:
            message = f"shadow mode ({message})"
        kv["foreign_arm_publishers"] = ",".join(self.foreign)
        last = "" if gate is None else gate.last_status
        kv |= self.stats | {"last_status": last, "shadow": self.config.shadow}
        return level, message, kv


NODE_CLASS = SafetyNode


def main(args: list[str] | None = None) -> None:
    raise SystemExit(run_node(SafetyNode, sys.argv if args is None else args))


if __name__ == "__main__":
    main()
