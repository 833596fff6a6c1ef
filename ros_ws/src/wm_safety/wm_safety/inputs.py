"""The safety node's inputs as :class:`wm_safety.gate.CommandGate` takes them: joint states,
the controller's reference and planner commands, parsed and checked (:mod:`wm_bringup.msgs`).

A joint state that is not finite holds at once (the gate counts it, logs it and holds); one
that is malformed otherwise is ignored with a warning, and so is a bad reference (NaN or inf
included: the last good one stays). A malformed planner command goes to the gate as such
(``malformed``: it holds). A command with a zero stamp has no source (no
``/wm/safety/command_source`` or verdict goes out for it), and its stamp counts as fresh.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rclpy.time import Time
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory
from wm_bringup.msgs import NonFiniteError, is_zero, joint_state_arrays, parse_trajectory

from wm_safety.gate import CommandGate
from wm_safety.joint_sources import JointStateSources


class GateInputs:
    """Messages -> the ``gate``'s inputs. ``names``: the arm's joint names (the node's
    ``joint_names``). ``sources``: who publishes ``/joint_states``. ``logger``: the node's (an
    rclpy logger: ``warning`` with ``throttle_duration_sec``)."""

    def __init__(
        self, gate: CommandGate, names: Sequence[str], sources: JointStateSources, logger: Any
    ) -> None:
        self.gate, self.names, self.sources, self.log = gate, names, sources, logger

    def joint_state(self, msg: JointState, gid: bytes | None, active: bool) -> None:
        """One ``/joint_states`` message from the publisher ``gid`` (None: rclpy gives none)."""
        try:
            q, suction = joint_state_arrays(msg, self.names)
        except NonFiniteError as exc:
            self.gate.bad_joints(str(exc), active)  # counted, logged, held
            return
        except ValueError as exc:
            self.log.warning(f"ignored joint state: {exc}", throttle_duration_sec=2.0)
            return
        restarted = self.sources.restarted(gid, time.monotonic())
        self.gate.stats["joint_state_clashes"] = self.sources.clashes  # a second live publisher
        self.gate.joints(q, suction, restarted, active)

    def reference(self, msg: JointState) -> None:
        """The arm controller's reference (its desired joint positions)."""
        try:
            q, _ = joint_state_arrays(msg, self.names)
        except ValueError as exc:  # NonFiniteError included: keep the last good reference
            self.log.warning(f"ignored reference: {exc}", throttle_duration_sec=2.0)
            return
        self.gate.pacer.reference(q, Time.from_msg(msg.header.stamp).nanoseconds * 1e-9)

    def command(self, msg: JointTrajectory) -> None:
        """A planner command (the node passes it on only while active)."""
        try:
            traj, why = parse_trajectory(msg, self.names), None
        except ValueError as exc:
            traj, why = None, str(exc)
        stamp = msg.header.stamp
        zero = is_zero(stamp)
        stamp_s = None if zero else Time.from_msg(stamp).nanoseconds * 1e-9
        self.gate.command(traj, None if zero else msg.header, stamp_s, why)
