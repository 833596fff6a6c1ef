"""Joint-trajectory following with the joint_trajectory_controller's semantics (no ROS).

A new trajectory replaces the current one. It starts at its header stamp, or on receipt when
the stamp is zero. Between the start and the first point, the desired position goes linearly
from the desired position at receipt to the first point. It then goes linearly between
points, and holds the last point. An empty trajectory stops: hold the current desired
position. The suction state of a segment is the suction of the point it moves toward; a
separate suction command (:meth:`set_suction`) changes it from then on, not the motion.

``cmd_timeout_s`` (as the JTC's ``cmd_timeout``; 0 switches it off): when no new trajectory
arrives within that long after the current one's last point, the command is stale and the
controller stops: :meth:`expired` turns true once, and the caller holds the arm where it
actually is (:meth:`hold` with the measured joints). The arm then holds even if whatever sends
the commands (the safety node) is gone.
"""

from __future__ import annotations

import numpy as np

from wm_bringup.msgs import Trajectory


class TrajectoryFollower:
    def __init__(self, q0: np.ndarray, suction: bool = False, cmd_timeout_s: float = 0.0):
        if not (np.isfinite(cmd_timeout_s) and cmd_timeout_s >= 0):
            raise ValueError(f"cmd_timeout_s={cmd_timeout_s!r} must be >= 0 (0: off)")
        self.cmd_timeout_s = float(cmd_timeout_s)
        self.received_s: float | None = None  # when the last trajectory arrived (None: none yet)
        self.hold(q0, suction)

    def hold(self, q: np.ndarray, suction: bool) -> None:
        """Hold ``q`` [6] (and the suction state) from now on."""
        self._t = np.zeros(1)  # [K] knot times (absolute, s)
        self._q = np.asarray(q, float)[None].copy()  # [K, 6]
        self._s = np.array([bool(suction)])  # [K]
        self._following = False  # a hold does not time out

    def set_suction(self, suction: bool, now_s: float) -> None:
        """A suction command (a separate gripper topic, as a real suction cup has): from
        ``now_s`` on, the suction is ``suction``; the arm's motion is untouched (a real arm's
        trajectory controller never hears of the gripper)."""
        later = self._t > now_s  # [K] the knots still ahead
        self._s[later] = bool(suction)
        if not later.any():  # holding the last point: hold it with the new suction
            self._s[-1] = bool(suction)

    def expired(self, t: float) -> bool:
        """True once when the trajectory being followed went stale at ``t``: its last point
        is more than ``cmd_timeout_s`` in the past and nothing newer arrived."""
        if not self._following or self.cmd_timeout_s <= 0:
            return False
        if t > self._t[-1] + self.cmd_timeout_s:
            self._following = False
            return True
        return False

    def set(self, traj: Trajectory, now_s: float) -> None:
        """Start following ``traj`` (received at ``now_s``, in the same clock as its stamp)."""
        q_now, s_now = self.sample(now_s)
        self.received_s = float(now_s)
        if len(traj.times) == 0:
            self.hold(q_now, s_now)
            return
        start = traj.stamp_s if traj.stamp_s > 0 else now_s
        s = traj.suction if traj.suction is not None else np.full(len(traj.times), s_now)
        self._t = np.concatenate([[min(now_s, start)], start + traj.times])  # [P+1]
        self._q = np.concatenate([q_now[None], traj.positions])  # [P+1, 6]
        self._s = np.concatenate([[s_now], s])  # [P+1]
        self._following = True

    def describe(self, now_s: float) -> str:
        """What the follower is doing at ``now_s``, for a log line: holding, or following the
        trajectory received how long ago, with its knots' times from now."""
        got = "none received" if self.received_s is None else f"{now_s - self.received_s:.2f} s ago"
        if not self._following:
            return f"holding (last trajectory {got})"
        ahead = ", ".join(f"{t - now_s:+.2f}" for t in self._t[1:])
        return f"following a trajectory received {got}, knots at {ahead} s"

    def sample(self, t: float) -> tuple[np.ndarray, bool]:
        """Desired (positions [6], suction) at absolute time ``t``."""
        if t <= self._t[0]:
            return self._q[0].copy(), bool(self._s[0])
        if t >= self._t[-1]:
            return self._q[-1].copy(), bool(self._s[-1])
        k = int(np.searchsorted(self._t, t, side="right"))  # t in [t[k-1], t[k])
        f = (t - self._t[k - 1]) / (self._t[k] - self._t[k - 1])
        return self._q[k - 1] + f * (self._q[k] - self._q[k - 1]), bool(self._s[k])
