"""When the first point of an arm command may be reached, from where the arm's controller is.

The filter bounds each step from the last target that passed (``SafetyFilter.last_q``). A
joint-trajectory controller does not start a new trajectory from there: it starts from its own
desired (reference) position at receipt and goes linearly to the first point by that point's
time. A sender that paces its commands by its own clock cannot know when the controller
received the last one: with a simulator's ``/clock`` (0.1 s ticks, seen up to a tick late), a
command that reached the controller a tick later than the sender's clock said has made no
progress when the next one, received in time, replaces it, and the controller covers both steps
in one tick. Reproduced offline with the filter, the safety node's pacing, the simulator's
follower and the MuJoCo env: 0.248 m/s commanded per tick against the filter's 0.175.

:class:`FirstPointPacer` uses the controller's reference position, as a
``joint_trajectory_controller`` publishes it (and ``wm_sim`` on ``/arm_controller/reference``):
at receipt the controller is on the straight (joint-space) path from that reference towards the
last target it received, which is among the targets sent since one tick before the reference's
stamp, or the last one sent before those, or one the reference already stands on (commands
arrive in the order sent). The first point's time is at least the largest tool distance from
those positions over the speed limit. Without a reference (a controller that does not publish
one), nothing changes. Distances are straight tool chords, as the filter's own speed check; the
joint-space path bends a little, which the filter's margin under the monitored limit covers.
"""

from __future__ import annotations

import numpy as np

from wm_core.robot import ArmKinematics

MAX_SENT = 64
"""Targets kept at most (a clock that stopped must not grow the list without bound)."""
REACHED_M = 1e-4
"""A reference this close (m, at the tool) to a target sent means the controller got there."""


class FirstPointPacer:
    """``speed_limit``: tool speed (m/s) the first segment may ask for (the filter's
    ``tool_speed_limit``). ``receipt_delay_s``: how much later than the sender's clock a command
    may reach the controller (a ``/clock`` seen one tick late: one control period)."""

    def __init__(self, kin: ArmKinematics, speed_limit: float, receipt_delay_s: float):
        if not (np.isfinite(speed_limit) and speed_limit > 0):
            raise ValueError(f"{speed_limit=} must be > 0")
        if not (np.isfinite(receipt_delay_s) and receipt_delay_s >= 0):
            raise ValueError(f"{receipt_delay_s=} must be >= 0")
        self.kin = kin
        self.speed_limit = float(speed_limit)
        self.receipt_delay_s = float(receipt_delay_s)
        self.ref_tool: np.ndarray | None = None  # [3] the controller's reference tool position
        self.ref_stamp_s = 0.0
        self._sent: list[tuple[float, np.ndarray]] = []  # (sender's clock, target tool [3])

    def reset(self) -> None:
        self.ref_tool, self.ref_stamp_s = None, 0.0
        self._sent.clear()

    def reference(self, q_ref: np.ndarray, stamp_s: float) -> None:
        """The controller's reference joints [6] at ``stamp_s`` (its clock)."""
        self.ref_tool = self.kin.tool_position(np.asarray(q_ref, float))
        self.ref_stamp_s = float(stamp_s)

    def candidates(self, now_s: float) -> list[np.ndarray]:
        """Tool positions [3] the controller may be heading from or to at receipt."""
        if self.ref_tool is None:
            return []
        since = self.ref_stamp_s - self.receipt_delay_s
        # a target stamped after now was sent before the clock went back (a restarted sim)
        sent = [(t, p) for t, p in self._sent if t <= now_s]
        older = [i for i, (t, _) in enumerate(sent) if t < since]
        # the last target sent before `since` is the one the controller may still be heading to,
        # unless it already stands on a later one (commands arrive in the order sent)
        start = older[-1] if older else 0
        at = [i for i, (_, p) in enumerate(sent) if np.linalg.norm(p - self.ref_tool) <= REACHED_M]
        if at:
            start = max(start, at[-1])
        self._sent = sent[start:][-MAX_SENT:]
        return [self.ref_tool, *(p for _, p in self._sent)]

    def first_time(self, q_first: np.ndarray, now_s: float, min_s: float) -> float:
        """The first point's time (s after sending at ``now_s``): at least ``min_s``, and long
        enough that from every candidate position the tool moves no faster than the limit."""
        tools = self.candidates(now_s)
        if not tools:
            return float(min_s)
        end = self.kin.tool_position(np.asarray(q_first, float))
        d = max(float(np.linalg.norm(end - p)) for p in tools)
        return max(float(min_s), d / self.speed_limit)

    def sent(self, qs: np.ndarray, now_s: float) -> None:
        """Record the points qs [P, 6] of a trajectory sent at ``now_s``."""
        for q in np.asarray(qs, float):
            self._sent.append((float(now_s), self.kin.tool_position(q)))
        del self._sent[:-MAX_SENT]
