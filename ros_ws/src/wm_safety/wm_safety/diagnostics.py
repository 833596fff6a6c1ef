"""What the safety node reports on ``/diagnostics`` (:func:`safety_status`), composed from the
gate, the arm-topic watch, shadow mode and the node's counters (:func:`wm_safety.gate.new_stats`).
"""

from __future__ import annotations

from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus

from wm_safety.gate import CommandGate


def safety_status(
    base: tuple[Any, str, dict[str, Any]],
    gate: CommandGate | None,
    foreign: list[str],
    shadow: bool,
    stats: dict[str, Any],
) -> tuple[Any, str, dict[str, Any]]:
    """(level, message, key values) from the node's ``base`` status (its lifecycle state): a
    latched e-stop is an ERROR, a hold a WARN, another publisher on the arm topic (``foreign``,
    :class:`wm_safety.publishers.ArmTopicWatch`) an ERROR as well; in shadow mode the message
    says so. The key values: the filter's counts, ``foreign_arm_publishers``, ``stats``, the
    gate's last status and ``shadow``."""
    level, message, kv = base[0], base[1], dict(base[2])
    if gate is not None:
        if gate.filter.estopped is not None:
            level, message = DiagnosticStatus.ERROR, f"e-stop latched ({gate.filter.estopped})"
        elif gate.holding:
            level, message = DiagnosticStatus.WARN, f"holding: {gate.holding}"
        kv |= {f"filter_{k}": v for k, v in gate.filter.counts.items()}
    if foreign:
        other = f"other publisher(s) on the arm topic: {', '.join(foreign)}"
        message = other if level != DiagnosticStatus.ERROR else f"{message}; {other}"
        level = DiagnosticStatus.ERROR
    if shadow:
        message = f"shadow mode ({message})"
    kv["foreign_arm_publishers"] = ",".join(foreign)
    last = "" if gate is None else gate.last_status
    kv |= stats | {"last_status": last, "shadow": shadow}
    return level, message, kv
