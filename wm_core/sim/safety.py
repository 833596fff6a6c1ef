"""Safety event detectors for scoring episodes.

These observe the simulator (ground truth) and count events; they do not intervene. The hard
safety filter that guards commands will live in ``wm_core.plan`` (planner issue). Each detector
counts rising edges with hysteresis: a violation that lasts many physics steps, or chatters
(contact made and broken within ``clear_samples`` physics steps), is one event.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

EVENT_KINDS = (
    "arm_table_collision",
    "arm_bin_collision",
    "joint_position_limit",
    "joint_velocity_limit",
    "tool_speed",
    "keepout_entry",
)


@dataclass(frozen=True)
class SafetySample:
    """What the detectors look at, for one physics step."""

    q: np.ndarray  # [6] joint positions
    qd: np.ndarray  # [6] joint velocities
    tool_speed: float  # m/s
    arm_points: np.ndarray  # [P, 3] arm collision-shape centres
    arm_radii: np.ndarray  # [P] their bounding radii
    touching_table: bool
    touching_bin: bool


@dataclass(frozen=True)
class SafetyLimits:
    lower: np.ndarray  # [6]
    upper: np.ndarray  # [6]
    velocity: np.ndarray  # [6]
    tool_speed: float
    keepout_boxes: tuple  # ((lo3, hi3), ...) as numpy arrays
    position_tol: float = 1e-3  # rad
    velocity_tol: float = 0.02  # fraction of the limit


def active_violations(s: SafetySample, lim: SafetyLimits) -> set[str]:
    """Kinds of violation present in this sample."""
    out = set()
    if s.touching_table:
        out.add("arm_table_collision")
    if s.touching_bin:
        out.add("arm_bin_collision")
    if ((s.q < lim.lower - lim.position_tol) | (s.q > lim.upper + lim.position_tol)).any():
        out.add("joint_position_limit")
    if (np.abs(s.qd) > lim.velocity * (1 + lim.velocity_tol)).any():
        out.add("joint_velocity_limit")
    if s.tool_speed > lim.tool_speed:
        out.add("tool_speed")
    for lo, hi in lim.keepout_boxes:
        r = s.arm_radii[:, None]  # [P, 1]
        if ((s.arm_points >= lo - r) & (s.arm_points <= hi + r)).all(axis=1).any():
            out.add("keepout_entry")
            break
    return out


class SafetyMonitor:
    """Counts safety events per kind over an episode.

    An event starts when a kind of violation appears while not already active; the kind stays
    active until ``clear_samples`` consecutive samples are free of it (25 physics steps =
    50 ms at 500 Hz by default), so contact chatter is not counted many times.
    """

    def __init__(self, limits: SafetyLimits, clear_samples: int = 25):
        if clear_samples < 1:
            raise ValueError(f"{clear_samples=} must be >= 1")
        self.limits = limits
        self.clear_samples = clear_samples
        self.reset()

    def reset(self) -> None:
        self.counts: Counter[str] = Counter({k: 0 for k in EVENT_KINDS})
        self._clean_for: dict[str, int] = {}  # active kind -> consecutive clean samples

    def update(self, sample: SafetySample) -> set[str]:
        """Feed one sample; returns the kinds of event that started at this sample."""
        now = active_violations(sample, self.limits)
        new = {k for k in now if k not in self._clean_for}
        for k in new:
            self.counts[k] += 1
        for k in list(self._clean_for):
            if k not in now:
                self._clean_for[k] += 1
                if self._clean_for[k] >= self.clear_samples:
                    del self._clean_for[k]
        for k in now:
            self._clean_for[k] = 0
        return new

    @property
    def total(self) -> int:
        return int(sum(self.counts.values()))
