"""One log line per safety event a simulated world scores, with what its controller was doing.

The world nodes (``wm_sim``, ``wm_pybullet``) score safety from their ground truth
(``wm_core.sim.safety``): arm-table contact, joint limits, tool speed, keep-out entry. A count in
the episode report says that an event happened, not why. This says what the arm was asked to do
in the tick the event started: the tool speed the world measured (its peak over the tick's
physics steps) against the speed of the desired motion (the chord of the follower's desired
positions over the tick, through the arm's kinematics) in that tick and the one before (a
step in it is a jerk the arm's servo may overshoot), and what the follower was doing (the
age of the trajectory it follows, its knots' times). A measured speed far above the desired
one points at the physics (a contact, a grip, the motors' tracking); a desired speed over the
limit points at the commands and their timing.
"""

from __future__ import annotations

import numpy as np

from wm_bringup.trajectory import TrajectoryFollower
from wm_core.robot import ArmKinematics


class WorldEventLog:
    """``describe(...)`` -> the warning for a tick with new safety events (None without)."""

    def __init__(self, kin: ArmKinematics, dt_s: float, tool_speed_limit: float) -> None:
        if not dt_s > 0:
            raise ValueError(f"{dt_s=} must be > 0")
        self.kin, self.dt_s, self.limit = kin, float(dt_s), float(tool_speed_limit)
        self.count = 0
        self.last_desired = 0.0  # m/s, the tick before's (a jump in it is a jerk for the servo)

    def describe(
        self,
        info: dict,
        q_from: np.ndarray,
        q_to: np.ndarray,
        follower: TrajectoryFollower,
        tick_start_s: float,
    ) -> str | None:
        """``info``: the world's info after the tick; ``q_from``, ``q_to`` [6]: the desired
        joints at the tick's start and end; ``tick_start_s``: the tick's start (sim clock)."""
        chord = self.kin.tool_position(q_to) - self.kin.tool_position(q_from)  # [3]
        desired, before = float(np.linalg.norm(chord)) / self.dt_s, self.last_desired
        self.last_desired = desired
        kinds = list(info.get("safety_events", ()))
        if not kinds:
            return None
        self.count += 1
        peak = float(info.get("tool_speed_peak", float("nan")))
        held = "an object held" if np.any(info.get("held", ())) else "nothing held"
        if "held_contacts" in info and np.any(info.get("held", ())):
            touched = ", ".join(info["held_contacts"]) or "nothing"
            held += f" (touching {touched} in the tick)"
        return (
            f"safety event {', '.join(kinds)} in the tick from {tick_start_s:.2f} s: tool "
            f"{peak:.3f} m/s at its peak, desired motion {desired:.3f} m/s ({before:.3f} the tick "
            f"before; limit {self.limit:.3f}), {held}; the follower was "
            f"{follower.describe(tick_start_s)}"
        )
