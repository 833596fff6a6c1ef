"""The safety node's parameters (:data:`SAFETY_PARAMS`) and the config they map onto, once
(:func:`safety_config`, the node's ``build_config``).

The filter's parameters are generated from ``wm_core.safety.FilterConfig``'s fields and the
node's own from :class:`SafetyNodeConfig`'s (default, range, the first sentence of the field's
docstring as the description), so each range is written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wm_bringup.nodekit import CELL_FILE, JOINT_NAMES, Param, cell_of, joint_names_of

from wm_core.cell import Workcell
from wm_core.config import bounded, check_fields
from wm_core.robot.limits import CONTROL_HZ
from wm_core.safety import FilterConfig

ARM_TOPIC = "/arm_controller/joint_trajectory"
SUCTION_TOPIC = "/suction/command"
SHADOW_TOPIC = "/wm/shadow/joint_trajectory"


@dataclass(frozen=True)
class SafetyNodeConfig:
    filter: FilterConfig
    cell: Workcell
    shadow: bool
    """Shadow mode (read-only; :mod:`wm_safety.safety_node`)."""
    joint_names: tuple[str, ...]
    """The arm's six joint names (read-only; :mod:`wm_safety.safety_node`)."""
    watchdog_period_s: float = bounded(0.05, 0.005, 1.0)
    """Period of the staleness watchdog (s)."""
    publisher_check_period_s: float = bounded(1.0, 0.1, 60.0)
    """Period of the check for other publishers on the arm topic (s)."""
    resync_tolerance_rad: float = bounded(0.5, 0.05, 6.3)
    """Arm-vs-last-command gap that re-syncs (rad)."""
    suction_in_trajectory: bool = True
    """Send suction as the suction_cup joint (else on /suction/command)."""

    def __post_init__(self) -> None:
        check_fields(self)


def _params(config: type, *fields: str) -> tuple[Param, ...]:
    """The parameters of ``config``'s ``fields``, in that order."""
    return tuple(Param.of(config, f) for f in fields)


SAFETY_PARAMS = (
    *_params(FilterConfig, "joint_margin", "velocity_scale"),
    Param("control_hz", 10.0, "Command rate (Hz): the step clamp is velocity / rate.", *CONTROL_HZ),
    *_params(FilterConfig, "table_clearance", "tool_speed_limit", "max_tool_lead"),
    *_params(FilterConfig, "tool_accel_limit", "stale_after_s"),
    CELL_FILE,
    *_params(SafetyNodeConfig, "watchdog_period_s", "publisher_check_period_s"),
    *_params(SafetyNodeConfig, "resync_tolerance_rad", "suction_in_trajectory"),
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
"""The node's parameters, in their order of declaration."""


def safety_config(values: dict[str, Any]) -> SafetyNodeConfig:
    """The parameter values (already range-checked) -> the config; ConfigError if bad."""
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


def ready_message(cfg: SafetyNodeConfig) -> str:
    """The node's log line once configured."""
    return (
        f"safety filter ready: stale after {cfg.filter.stale_after_s} s, cell "
        f"{cfg.cell.source or cfg.cell.name}: {len(cfg.cell.keepout_boxes)} keep-out "
        f"box(es), {len(cfg.cell.obstacles)} obstacle box(es)"
    )
