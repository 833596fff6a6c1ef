"""The hard safety filter: independent of the planner and its costs.

Every joint command passes through :meth:`SafetyFilter.filter` before it reaches an arm
(simulated or real). In order, it:

1. holds the last safe command while the e-stop is latched (only :meth:`release` clears it);
2. holds on NaN/inf in the command or the joint state, or when either is stale;
3. clamps the target to the joint position limits (minus a margin);
4. clamps the step from the last command to the joint velocity limits, and shortens it so the
   tool moves no faster than the tool speed limit (ISO 10218-1 reduced speed by default) and
   the commanded tool leads the measured tool by no more than ``max_tool_lead`` and speeds up
   by no more than ``tool_accel_limit`` from one command to the next;
5. rejects (holds) a command whose forward kinematics, at the end of the step or half way,
   puts an arm capsule into the table, a fixed obstacle (the bin's walls) or a keep-out box
   deeper than the last command did.

Holding means re-sending the last command that passed, with the suction state unchanged
(dropping a held object is not safe either).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch

from wm_core.cell import Workcell, sim_cell
from wm_core.config import bounded, check_fields, check_range
from wm_core.robot import ArmKinematics
from wm_core.robot.capsules import ArmCapsules, box_penetration, capsule_points
from wm_core.robot.limits import ISO_10218_REDUCED_SPEED

log = logging.getLogger(__name__)

STATUSES = ("ok", "clamped", "rejected", "hold_stale", "hold_nan", "estop")


@dataclass(frozen=True)
class FilterConfig:
    joint_margin: float = bounded(0.02, 0.0, 0.5)
    """Margin (rad) kept inside the URDF joint position limits."""
    velocity_scale: float = bounded(0.9, 0.01, 1.0)
    """Fraction of the URDF joint velocity limits a command step may use."""
    control_dt: float = 0.1
    """Seconds between commands (the step clamp is velocity x control_dt)."""
    table_clearance: float = bounded(0.003, 0.0, 0.5)
    """Arm capsules (from the upper arm on) must stay this far (m) above the table top."""
    tool_speed_limit: float = bounded(0.7 * ISO_10218_REDUCED_SPEED, 1e-3, 10.0)
    """Tool speed (m/s) a command step may ask for. The margin under the monitored limit covers
    the joint-space interpolation, which bends the tool path, and the servo: lagging behind its
    command while it holds an object, it catches up faster than it was commanded (measured in
    the sim: 0.254 m/s peak after steps commanded at 0.8 x 0.25 = 0.2 m/s)."""
    max_tool_lead: float = bounded(0.02, 1e-3, 1.0)
    """How far (m) the commanded tool may run ahead of the measured tool, along the step's
    direction of travel. A servo that lags (carrying a load) and is then given a command far
    ahead closes the gap faster than any single step asked for; bounding the lead bounds that
    catch-up speed. Only the lead along the motion counts, so a static offset across it (a
    load's sag, the tool resting on an object) cannot freeze the arm, and a step back towards
    the arm always passes."""
    tool_accel_limit: float = bounded(1.0, 1e-3, 100.0)
    """How fast (m/s^2) the commanded tool speed may grow from one command to the next. The
    position servo is underdamped: a step from rest straight to full speed overshoots it
    (measured in the sim: 0.23 m/s when lifting from a grip at 0.175 m/s commanded). With the
    default, a move from rest takes one step at 0.1 m/s before it reaches full speed."""
    stale_after_s: float = bounded(0.5, 1e-3, 60.0)
    """Inputs older than this (s) make the filter hold."""
    first_checked_link: int = 2
    """Capsules of links before this index (base, shoulder: they sit on the table by design
    and only turn about the vertical axis) are not checked against the table."""

    def __post_init__(self) -> None:
        check_fields(self)
        check_range("control_dt", self.control_dt, 1e-3, 10.0)


@dataclass(frozen=True)
class FilterResult:
    q: np.ndarray | None  # [6] the joint command to send (None: nothing safe to send yet)
    suction: bool
    status: str  # one of STATUSES
    reasons: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return self.status in ("ok", "clamped")


class SafetyFilter:
    """The filter's state (the last command that passed, the e-stop latch) changes only through
    its own methods: :meth:`filter`, :meth:`resume_from`, :meth:`reset`, :meth:`estop` and
    :meth:`release`. Geometry (table, obstacles, keep-out boxes, the arm's base) is the cell's."""

    def __init__(
        self,
        cfg: FilterConfig | None = None,
        cell: Workcell | None = None,
        kin: ArmKinematics | None = None,
    ):
        self.cfg = cfg or FilterConfig()
        self.cell = cell or sim_cell()
        self.kin = kin or ArmKinematics(base_pose=self.cell.arm.T_world_base)
        self.capsules = ArmCapsules(self.kin.arm, base_pose=self.kin.base_pose)
        self.boxes = (*self.cell.keepout_boxes, *self.cell.obstacles)
        self.lower = self.kin.lower + self.cfg.joint_margin
        self.upper = self.kin.upper - self.cfg.joint_margin
        self.max_step = self.kin.velocity_limit * self.cfg.velocity_scale * self.cfg.control_dt
        checked = [
            i for i, o in enumerate(self.capsules.owners) if o >= self.cfg.first_checked_link
        ]
        self._checked = torch.tensor(checked)
        self.counts: Counter[str] = Counter()
        self.last_q: np.ndarray | None = None
        self.last_suction = False
        self._moved: tuple[np.ndarray, float] | None = None  # (command, its tool step (m))
        self._step_moved: float | None = None  # tool step (m) of the command being filtered
        self.estopped: str | None = None

    # ------------------------------------------------------------------ state
    def reset(self, joint_pos: np.ndarray, suction: bool = False) -> None:
        """Start from the measured joint positions (the first hold target)."""
        q = np.asarray(joint_pos, float)
        if q.shape != (6,) or not np.isfinite(q).all():
            raise ValueError(f"reset needs 6 finite joint positions, got {joint_pos!r}")
        self.last_q, self.last_suction = q.copy(), bool(suction)
        self._moved = None
        self.counts.clear()

    def resume_from(self, q: np.ndarray, suction: bool) -> None:
        """The command the arm was actually sent last (a hold, or the first point of a
        multi-point trajectory that the filter judged point by point): the next command's
        limits start from it."""
        q = np.asarray(q, float)
        if q.shape != (6,) or not np.isfinite(q).all():
            raise ValueError(f"resume_from needs 6 finite joint positions, got {q!r}")
        self.last_q, self.last_suction = q.copy(), bool(suction)

    def at_rest(self) -> None:
        """The arm has reached the last command and stopped (nothing new came for longer than
        a control period): the next step accelerates from rest, not from the last step's
        speed."""
        self._moved = None

    def estop(self, reason: str) -> None:
        """Latch the e-stop: every later command holds until :meth:`release`."""
        if self.estopped is None:
            log.warning("e-stop latched: %s", reason)
        self.estopped = reason

    def release(self) -> None:
        log.warning("e-stop released (was: %s)", self.estopped)
        self.estopped = None

    # ------------------------------------------------------------------ geometry
    def violation(self, q: np.ndarray) -> float:
        """Deepest intrusion (m) of an arm capsule into the table, an obstacle or a keep-out box
        at q [6]."""
        return float(self.violations(np.asarray(q, float)[None])[0])

    def violations(self, qs: np.ndarray) -> np.ndarray:
        """:meth:`violation` for a batch of joint configurations qs [K, 6] -> [K] (one forward
        kinematics pass: the filter checks three configurations per command)."""
        with torch.no_grad():
            ends, _ = self.capsules(torch.as_tensor(qs, dtype=torch.float32))  # [K, C, 2, 3]
            pts = capsule_points(ends[:, self._checked], 4)  # [K, Cc, 4, 3]
            r = self.capsules.radii[self._checked]  # [Cc]
            x, y, z = pts.unbind(-1)
            t = self.cell.table
            on_table = (x > t.x[0]) & (x < t.x[1]) & (y > t.y[0]) & (y < t.y[1])
            depth = self.cfg.table_clearance + r[:, None] - (z - t.top_z)
            table = torch.relu(depth) * on_table  # [K, Cc, 4]
            worst = table.flatten(1).max(dim=1).values  # [K]
            if self.boxes:
                all_pts = capsule_points(ends, 4)  # [K, C, 4, 3]
                for lo, hi in self.boxes:
                    pen = box_penetration(all_pts, self.capsules.radii, lo, hi)  # [K, C, 4]
                    worst = torch.maximum(worst, pen.flatten(1).max(dim=1).values)
        return worst.numpy().astype(float)

    def _limit_tool_speed(self, step: np.ndarray, start: np.ndarray) -> np.ndarray:
        """Shorten a joint step until its tool displacement (checked half way and at the end)
        stays under ``tool_speed_limit * control_dt``."""
        max_d = self.cfg.tool_speed_limit * self.cfg.control_dt
        for _ in range(8):
            d = max(
                np.linalg.norm(self.kin.tool_position(self.last_q + f * step) - start) / f
                for f in (0.5, 1.0)
            )
            if d <= max_d:
                return step
            step = step * (0.95 * max_d / d)
        return step * 0.0

    def _limit_lead(self, step: np.ndarray, start: np.ndarray, q_meas: np.ndarray) -> np.ndarray:
        """Shorten a joint step so the commanded tool runs at most ``max_tool_lead`` ahead of
        the measured tool, ahead meaning along the step's direction of travel."""
        meas = self.kin.tool_position(q_meas)
        for f in (1.0, 0.75, 0.5, 0.25):
            end = self.kin.tool_position(self.last_q + f * step)
            travel = np.linalg.norm(end - start)
            if travel < 1e-6 or (end - meas) @ (end - start) / travel <= self.cfg.max_tool_lead:
                return f * step
        return step * 0.0

    def _limit_accel(self, step: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, float]:
        """Shorten a joint step so its tool displacement exceeds the last command's by at most
        ``tool_accel_limit * control_dt^2``. After a hold, or when the last command was set
        from outside (a re-sync), the arm counts as at rest. -> (step, its tool displacement)"""
        dt = self.cfg.control_dt
        prev = 0.0
        if self._moved is not None and np.array_equal(self._moved[0], self.last_q):
            prev = self._moved[1]
        allowed = prev + self.cfg.tool_accel_limit * dt * dt
        d = float(np.linalg.norm(self.kin.tool_position(self.last_q + step) - start))
        if d <= allowed:
            return step, d
        f = 0.98 * allowed / d
        return step * f, float(
            np.linalg.norm(self.kin.tool_position(self.last_q + f * step) - start)
        )

    # ------------------------------------------------------------------ the filter
    def filter(
        self,
        q_target: np.ndarray,
        suction: bool,
        joint_pos: np.ndarray,
        command_age_s: float = 0.0,
        state_age_s: float = 0.0,
    ) -> FilterResult:
        """One command in, one safe command out (see the module docstring)."""
        self._step_moved = None
        res = self._filter(q_target, suction, joint_pos, command_age_s, state_age_s)
        self.counts[res.status] += 1
        self._moved = None
        if res.q is not None and res.passed:
            if self._step_moved is not None:
                self._moved = (res.q.copy(), self._step_moved)
            self.last_q, self.last_suction = res.q, res.suction
        return res

    def _hold(self, status: str, *reasons: str) -> FilterResult:
        return FilterResult(
            None if self.last_q is None else self.last_q.copy(), self.last_suction, status, reasons
        )

    def _filter(self, q_target, suction, joint_pos, command_age_s, state_age_s) -> FilterResult:
        if self.estopped is not None:
            return self._hold("estop", self.estopped)
        q_meas = np.asarray(joint_pos, float).reshape(-1)
        q_cmd = np.asarray(q_target, float).reshape(-1)
        if q_meas.shape != (6,) or not np.isfinite(q_meas).all():
            return self._hold("hold_nan", f"joint state {joint_pos!r} is not 6 finite numbers")
        if q_cmd.shape != (6,) or not np.isfinite(q_cmd).all():
            return self._hold("hold_nan", f"command {q_target!r} is not 6 finite numbers")
        ages = {"command": command_age_s, "joint state": state_age_s}
        for what, age in ages.items():
            if not np.isfinite(age) or age > self.cfg.stale_after_s:
                return self._hold("hold_stale", f"{what} is {age:.3f} s old")
        if self.last_q is None:
            self.last_q = q_meas.copy()
        reasons = []
        q = np.clip(q_cmd, self.lower, self.upper)
        if not np.allclose(q, q_cmd):
            reasons.append("joint position limit")
        step = np.clip(q - self.last_q, -self.max_step, self.max_step)
        if not np.allclose(step, q - self.last_q):
            reasons.append("joint velocity limit")
        start = self.kin.tool_position(self.last_q)  # [3] the last command's tool position
        limited = self._limit_tool_speed(step, start)
        if not np.allclose(limited, step):
            reasons.append("tool speed limit")
        led = self._limit_lead(limited, start, q_meas)
        if not np.allclose(led, limited):
            reasons.append("tool lead limit")
        step, self._step_moved = self._limit_accel(led, start)
        if not np.allclose(step, led):
            reasons.append("tool acceleration limit")
        q = self.last_q + step
        before, *probes = self.violations(np.stack([self.last_q, self.last_q + 0.5 * step, q]))
        for v in probes:
            if v > 0 and v > before + 1e-6:
                return self._hold(
                    "rejected", f"table/obstacle/keep-out intrusion {v * 1000:.1f} mm"
                )
        return FilterResult(q, bool(suction), "clamped" if reasons else "ok", tuple(reasons))
