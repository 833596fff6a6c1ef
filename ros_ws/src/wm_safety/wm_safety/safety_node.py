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
remappable): it is the node's one JointTrajectory subscription. Any other publisher on the
arm's topic itself is reported (:mod:`wm_safety.publishers`: without DDS security nothing else
stops one).

**Joint names**: ``joint_names`` (read-only) names the URDF's six joints as the arm's driver
does; the commands use those names, and joint states must carry them.
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.subscription import MessageInfo
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Header
from trajectory_msgs.msg import JointTrajectory
from wm_bringup.msgs import REFERENCE_TOPIC, make_trajectory, publisher_of
from wm_bringup.nodekit import RELIABLE_QOS, WmNode, guarded_transition, run_node

from wm_core.viz.record import verdict_of
from wm_safety.config import (
    ARM_TOPIC,
    SAFETY_PARAMS,
    SHADOW_TOPIC,
    SUCTION_TOPIC,
    SafetyNodeConfig,
    ready_message,
    safety_config,
)
from wm_safety.diagnostics import safety_status
from wm_safety.gate import CommandGate, Output, new_stats
from wm_safety.inputs import GateInputs
from wm_safety.joint_sources import JointStateSources
from wm_safety.publishers import ArmTopicWatch


class SafetyNode(WmNode):
    PARAMS = SAFETY_PARAMS

    def __init__(self, node_name: str = "wm_safety", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.names = self.config.joint_names
        self.gate: CommandGate | None = None  # the decisions, once configured
        self.stats: dict[str, Any] = new_stats()
        self.inputs: GateInputs | None = None  # messages -> the gate, once configured
        self.arm_watch: ArmTopicWatch | None = None  # other publishers on the arm topic
        self.publisher_check = None
        self.add_post_set_parameters_callback(self._after_set)

    # the gate's state, as the tests and diagnostics read it
    filter = property(lambda self: None if self.gate is None else self.gate.filter)
    pacer = property(lambda self: None if self.gate is None else self.gate.pacer)
    q = property(lambda self: None if self.gate is None else self.gate.q)
    holding = property(lambda self: "no command yet" if self.gate is None else self.gate.holding)
    foreign = property(lambda self: [] if self.arm_watch is None else self.arm_watch.foreign)

    def build_config(self, values: dict[str, Any]) -> SafetyNodeConfig:
        super().build_config(values)
        return safety_config(values)

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
        sources = JointStateSources(
            cfg.filter.stale_after_s, self._joint_state_publishers, self.get_logger()
        )
        self.inputs = GateInputs(self.gate, self.names, sources, self.get_logger())
        self.watchdog = self.create_timer(cfg.watchdog_period_s, self._on_watchdog)
        if not cfg.shadow:
            own = (self.get_name(), self.get_namespace())
            self.arm_watch = ArmTopicWatch(
                self.pub_arm.topic_name, own, self._arm_publishers, self.get_logger()
            )
            self.publisher_check = self.create_timer(
                cfg.publisher_check_period_s, self.arm_watch.check
            )
        else:
            self.get_logger().warning(
                f"SHADOW MODE: judging every command, publishing on {SHADOW_TOPIC}; nothing "
                "goes to the arm or the suction"
            )
        self.get_logger().info(ready_message(cfg))
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
        self.arm_watch = None
        for s in self.subs:
            self.destroy_subscription(s)
        for p in (self.pub_arm, self.pub_suction, self.pub_source, self.pub_verdict):
            if p is not None:  # no suction publisher: suction in the trajectory, or shadow
                self.destroy_lifecycle_publisher(p)
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def release(self) -> None:
        self.gate = self.inputs = None

    def _after_set(self, params: list[Parameter]) -> None:
        for p in params:
            if p.name == "release_estop" and p.value:
                if self.gate is not None:
                    self.gate.release_estop("parameter release_estop")
                self._reset_timer = self.create_timer(0.0, self._reset_release_flag)

    def _reset_release_flag(self) -> None:
        self.destroy_timer(self._reset_timer)
        self.set_parameters([Parameter("release_estop", value=False)])

    # ------------------------------------------------------------------ inputs
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_joints(self, msg: JointState, info: MessageInfo) -> None:
        if self.inputs is not None:
            self.inputs.joint_state(msg, publisher_of(info), self.active)

    def _joint_state_publishers(self) -> set[bytes]:
        topic = self.subs[0].topic_name  # /joint_states as remapped
        return {bytes(i.endpoint_gid) for i in self.get_publishers_info_by_topic(topic)}

    def _on_reference(self, msg: JointState) -> None:
        if self.inputs is not None:
            self.inputs.reference(msg)

    def _on_estop(self, msg: Bool) -> None:
        if self.gate is not None:
            self.gate.estop_signal(msg.data, "/wm/estop")

    def _on_command(self, msg: JointTrajectory) -> None:
        if self.active and self.inputs is not None:
            self.inputs.command(msg)

    def _on_watchdog(self) -> None:
        if self.active and self.gate is not None:
            self.gate.watchdog()

    def _arm_publishers(self) -> list[tuple[str, str]]:
        infos = self.get_publishers_info_by_topic(self.pub_arm.topic_name)
        return [(i.node_name, i.node_namespace) for i in infos]

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

    def diagnostics(self) -> tuple[Any, str, dict[str, Any]]:
        base = super().diagnostics()
        return safety_status(base, self.gate, self.foreign, self.config.shadow, self.stats)


NODE_CLASS = SafetyNode


def main(args: list[str] | None = None) -> None:
    raise SystemExit(run_node(SafetyNode, sys.argv if args is None else args))


if __name__ == "__main__":
    main()
