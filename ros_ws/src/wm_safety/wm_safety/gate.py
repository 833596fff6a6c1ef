"""The safety node's decisions without ROS: what goes to the arm for each planner command, joint
state, e-stop and watchdog tick (:mod:`wm_safety.safety_node` is the ROS adapter around it).

Per command, each point goes through ``wm_core.safety.SafetyFilter`` in turn (joint limits,
joint velocity and tool speed clamps, table and keep-out intrusion, staleness of the command
stamp and of the joint state); the output is re-timed to at least ``control_dt`` per point, and
it stops before the first point the filter holds. Where the arm's controller reports its
reference (``/arm_controller/reference``; ``wm_sim`` and ``wm_pybullet`` do), the first point
comes no sooner than the tool can reach it at ``tool_speed_limit`` from every position the
controller may be at on receipt (``wm_core.safety.pacing``: the controller starts from its own
reference, which lags the last target by up to a step when a command reached it a ``/clock``
tick later than this node's clock said). Without a reference, the points wait for what is left
of the motion already sent, so a burst of commands cannot outrun the speed limits. The next
command's velocity clamp starts from the first output point (commands are replanned every
step).

Holds (a one-point trajectory, suction unchanged):

- **watchdog** (:meth:`CommandGate.watchdog`): when no command or no joint state arrived
  within ``stale_after_s``, hold (once, until commands resume) at the last point sent, where
  the arm's controller is headed and stays (at the measured joints if the arm is a re-sync away
  from that point, or nothing was sent since activation). While the joint states stay stale
  after a hold (this one, the e-stop's, any), commands get no answer at all: the arm's
  controller holds by itself (``cmd_timeout``), and a hold sent then could reach a restarted
  controller before its first joint state reaches this node, and move its arm to a target of
  before the restart. Stale there means on the node's clock or on the wall clock: a dead
  simulator's clock stands still;
- **e-stop** (:meth:`CommandGate.estop`): latched; every command holds until released;
- **re-sync** (:meth:`CommandGate.joints`): when the arm is more than ``resync_tolerance_rad``
  from the last safe command (an episode reset, a hand-guided move, a collision), the filter
  restarts from the measured joints with a hold. So it does when the joint states come from a
  restarted driver (``wm_safety.joint_sources``), whatever the gap: a hold at the old target
  would move an arm that a restart left a little elsewhere, also while the e-stop is latched.

Times are seconds on the node's clock (``now``); an input older than the clock cannot tell
(the clock jumped back: a restarted simulator) counts as stale.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from wm_core.cell import Workcell
from wm_core.safety import FilterConfig, SafetyFilter
from wm_core.safety.pacing import FirstPointPacer


def new_stats() -> dict[str, Any]:
    """The safety node's counters, all zero (the gate counts into them; the node reports them
    on ``/diagnostics``)."""
    return {
        "commands": 0,
        "sent": 0,
        "holds": 0,
        "malformed": 0,
        "bad_joint_states": 0,
        "joint_state_sources": 0,  # changes of the /joint_states publisher
        "holds_unsent": 0,  # answers not sent: no fresh joint state since a hold
        "joint_state_clashes": 0,  # messages from a second live publisher
    }


@dataclass(frozen=True)
class Output:
    """One trajectory for the arm (start on receipt)."""

    qs: np.ndarray  # [P, 6] points
    suction: list[bool]  # [P]
    times: list[float]  # [P] s after receipt
    source: Any  # the header of the planner command it answers (None: none)
    status: str  # the filter's status of its first point ("held" for a hold)


class CommandGate:
    """``now()``: the node's clock (s). ``out(output)``: publish; False when the node cannot
    (not active), and nothing counts as sent. ``logger``: an rclpy logger (``warning``,
    ``info``, ``error`` with ``throttle_duration_sec``). ``wall()``: a monotonic wall clock
    (s): the node's clock may be a simulator's, which stops when the simulator dies, and then
    no joint state ever looks old on it."""

    def __init__(
        self,
        cfg: FilterConfig,
        cell: Workcell,
        resync_tolerance_rad: float,
        now: Callable[[], float],
        out: Callable[[Output], bool],
        logger: Any,
        stats: dict[str, Any] | None = None,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg, self.resync_tol = cfg, float(resync_tolerance_rad)
        self.filter = SafetyFilter(cfg, cell)
        self.dt = cfg.control_dt
        # a command may reach the controller a /clock tick later than our clock says
        self.pacer = FirstPointPacer(self.filter.kin, cfg.tool_speed_limit, self.dt)
        self.now, self.out, self.log, self.wall = now, out, logger, wall
        self.q: np.ndarray | None = None  # [6] measured joints
        self.suction_meas: bool | None = None
        self.js_time: float | None = None  # receipt of the last good joint state
        self.js_wall: float | None = None  # the same on the wall clock
        self.cmd_time: float | None = None  # receipt of the last command
        self.activated_at: float | None = None
        self.holding: str | None = "no command yet"
        self.last_status = ""
        self.stats = stats if stats is not None else {}
        for key, zero in new_stats().items():
            self.stats.setdefault(key, zero)
        self.motion_end: float | None = None  # when the arm reaches the last target sent
        self.motion_s = 0.0  # how long that motion was
        self.sent_end: np.ndarray | None = None  # [6] last point sent: where the arm is headed

    # ------------------------------------------------------------------ ages
    def age(self, t: float | None) -> float:
        """Seconds since ``t`` (a receipt time on our clock); inf when there is none, or when
        the clock has jumped back past it: how old that input is can no longer be told."""
        if t is None:
            return float("inf")
        age = self.now() - t
        return age if age >= 0.0 else float("inf")

    def stamp_age(self, stamp_s: float) -> float:
        """Seconds since a message's header stamp. A stamp slightly ahead of our clock (the
        clock message still in flight) is fresh; one more than ``stale_after_s`` ahead comes
        from before a backwards clock jump (or a broken clock) and counts as stale."""
        age = self.now() - stamp_s
        if age < -self.cfg.stale_after_s:
            return float("inf")
        return max(0.0, age)

    def states_gone(self, state_age: float) -> bool:
        """No fresh joint state: ``state_age`` (on the node's clock) or the wall time since the
        last one over ``stale_after_s``. With the simulator dead its clock stands still, and
        only the wall clock tells that the arm's driver is gone."""
        wall_age = float("inf") if self.js_wall is None else self.wall() - self.js_wall
        return max(state_age, wall_age) > self.cfg.stale_after_s

    def activated(self) -> None:
        self.activated_at = self.now()
        self.sent_end = None  # the arm may have been moved by something else meanwhile

    # ------------------------------------------------------------------ inputs
    def bad_joints(self, error: str, active: bool) -> None:
        """A joint state that is not finite (``error``: what is wrong with it): nothing
        measured can be trusted until a finite one arrives; counted, logged, one hold (not one
        per message)."""
        self.stats["bad_joint_states"] += 1
        self.log.error(f"joint state not finite: holding ({error})", throttle_duration_sec=2.0)
        why = "joint state not finite"
        self.js_time = self.js_wall = None
        if active and self.q is not None and self.holding != why:
            self.hold(why, measured=False)

    def joints(self, q: np.ndarray, suction: bool | None, restarted: bool, active: bool) -> bool:
        """A good joint state [6]; ``restarted``: from a restarted driver. True when it
        re-synced the filter (a new source; counted in ``joint_state_sources``)."""
        self.q, self.suction_meas = q, suction
        self.js_time, self.js_wall = self.now(), self.wall()
        flt = self.filter
        if flt.last_q is None or not active:
            return False
        gap = float(np.abs(q - flt.last_q).max())
        if restarted:
            self.log.warning(
                f"joint states from a new publisher (the arm's driver restarted?), "
                f"{gap:.3f} rad from the last safe command: re-syncing, holding"
            )
            self.hold("re-sync: new joint-state source", resync=True)
            self.stats["joint_state_sources"] += 1
            return True
        if gap > self.resync_tol:
            self.log.warning(
                f"the arm is {gap:.2f} rad from the last safe command: re-syncing, holding"
            )
            self.hold("re-sync", resync=True)
        return False

    def estop(self, source: str) -> None:
        latched = self.filter.estopped is not None
        self.filter.estop(source)
        if not latched:
            self.hold("e-stop", resync=True)  # where the arm is

    def estop_signal(self, on: bool, source: str) -> None:
        """The e-stop topic ``source``: true latches the stop; false does not release it (it
        says so, at most every 5 s)."""
        if on:
            self.estop(source)
        elif self.filter.estopped is not None:
            self.log.info(
                "e-stop stays latched: set the parameter release_estop to true to release it",
                throttle_duration_sec=5.0,
            )

    def release_estop(self, by: str) -> None:
        """Release a latched e-stop (``by``: what released it, for the log)."""
        if self.filter.estopped is not None:
            self.filter.release()
            self.log.warning(f"e-stop released by {by}")

    def command(
        self, traj: Any, source: Any, stamp_s: float | None, malformed: str | None = None
    ) -> None:
        """A parsed planner command (``wm_bringup.msgs.Trajectory``), or None with why it is
        ``malformed``; ``source``: its header (None for a zero stamp); ``stamp_s``: its stamp
        (None: zero)."""
        self.stats["commands"] += 1
        self.cmd_time = self.now()
        if self.q is None:
            self.log.warning("no joint state yet: command dropped", throttle_duration_sec=2.0)
            return
        if traj is None:
            self.stats["malformed"] += 1
            self.log.warning(f"malformed command held: {malformed}", throttle_duration_sec=2.0)
            self.hold("malformed command")
            return
        if len(traj.times) == 0:
            self.hold("empty command (stop)", source=source)
            return
        cmd_age = 0.0 if stamp_s is None else self.stamp_age(stamp_s)
        state_age = self.age(self.js_time)
        flt = self.filter
        if self.holding and flt.estopped is None and state_age <= self.cfg.stale_after_s:
            # Resuming after a hold: the arm settled where it is, not at the last safe
            # command (a position controller under load sags; the arm's own cmd_timeout holds
            # at the measured joints). The limits of the next step start from there, or the
            # first step would add that gap to a full step (tool-speed events in wm chaos).
            flt.resume_from(self.q, flt.last_suction)
        elif self.motion_end is not None and self.now() - self.motion_end > 0.5 * self.dt:
            # the arm stopped at the last target (a skipped frame, a short stall): a full
            # step from standstill overshoots the tool speed limit (seen in wm chaos with
            # every other frame dropped); accelerate from rest
            flt.at_rest()
        passed, held = [], None
        for k in range(len(traj.times)):
            s = bool(traj.suction[k]) if traj.suction is not None else flt.last_suction
            res = flt.filter(traj.positions[k], s, self.q, cmd_age, state_age)
            if not res.passed:
                held = res
                break
            passed.append(res)
        if held is not None:
            self.last_status = f"{held.status}: {', '.join(held.reasons)}"
            self.log.warning(f"command held ({self.last_status})", throttle_duration_sec=2.0)
        if not passed:
            if self.holding and self.states_gone(state_age):
                # No fresh joint state since a hold went out (see the module's docstring):
                # the arm's controller holds by itself.
                self.stats["holds_unsent"] += 1
                return
            if held.q is None:  # nothing safe sent yet: hold where the arm is
                self.hold(held.status, source=source)
            else:
                self._send(Output(held.q[None], [held.suction], [self.dt], source, held.status))
                self.stats["holds"] += 1
            return
        times = [max(float(t), (k + 1) * self.dt) for k, t in enumerate(traj.times[: len(passed)])]
        if self.pacer.ref_tool is None:
            # no controller reference to time it from: wait for what is left of the motion
            # already sent (with one, the pacer alone times the first point from where the
            # controller is: adding this as well held a stack's commands at up to 0.3 s)
            times = self._paced(times)
        qs = np.array([r.q for r in passed])  # [P, 6]
        first = self.pacer.first_time(qs[0], self.now(), times[0])
        times = [t + first - times[0] for t in times]
        self._send(Output(qs, [r.suction for r in passed], times, source, passed[0].status))
        flt.resume_from(passed[0].q, passed[0].suction)  # commands are replanned every step
        self.last_status = passed[0].status if held is None else self.last_status
        if self.holding:
            self.log.info(f"commands resumed (was holding: {self.holding})")
        self.holding = None

    def watchdog(self) -> None:
        """Hold once when commands or joint states stopped (call every watchdog period)."""
        if self.q is None or self.holding:
            return
        stale = self.cfg.stale_after_s
        cmd_age, state_age = self.age(self.cmd_time), self.age(self.js_time)
        if self.cmd_time is None:
            cmd_age = self.age(self.activated_at)
        if cmd_age <= stale and state_age <= stale:
            return
        flt = self.filter
        q_last = flt.last_q if flt.last_q is not None else self.q
        flt.filter(q_last, flt.last_suction, self.q, cmd_age, state_age)  # counts the hold
        what = "commands" if cmd_age > stale else "joint states"
        # Hold where the arm's controller is headed: the last point sent, which passed the
        # filter and where a joint_trajectory_controller stays once the trajectory ends. The
        # measured joints are a joint-state period or two old: a hold there pulls an arm still
        # settling back toward where it was (wm chaos, kill_perception: 5 mrad under a held
        # object). Not when the arm is a re-sync away from it.
        end = self.sent_end
        gap = float("inf") if end is None else float(np.abs(end - self.q).max())
        target = end if gap <= self.resync_tol else None
        self.log.warning(
            f"watchdog: {what} stopped ({max(cmd_age, state_age):.2f} s): holding (joint "
            f"states {state_age:.2f} s old, {gap:.4f} rad from the last point sent)"
        )
        self.hold(f"{what} stale", measured=state_age <= stale, target=target)

    # ------------------------------------------------------------------ outputs
    def hold(
        self,
        why: str,
        measured: bool = True,
        source: Any = None,
        resync: bool = False,
        target: np.ndarray | None = None,
    ) -> None:
        """Hold at the measured joints (or, if those are stale, at the last safe command).
        While the e-stop is latched, at the hold target it latched unless ``resync`` (re-aiming
        it at the joints of an arm still coming to rest, or sagging under a load, would move
        the arm while latched). ``source``: the header of the planner command this hold
        answers (None: no command). ``target``: hold there instead (a point already sent),
        unless latched."""
        flt = self.filter
        state_age = self.age(self.js_time)
        fresh = state_age <= self.cfg.stale_after_s
        if self.holding and self.states_gone(state_age):
            # No fresh joint state since a hold went out: the arm's controller holds by itself
            # (cmd_timeout), and another hold could reach a restarted controller before its
            # first joint state reaches us, moving its arm to a target of before the restart.
            self.stats["holds_unsent"] += 1
            return
        measured = measured and fresh and (resync or flt.estopped is None)
        q = self.q if measured or flt.last_q is None else flt.last_q
        if target is not None and flt.estopped is None:
            q = target
        if q is None:  # nothing measured, nothing sent: no target a hold could keep
            self.holding, self.last_status = why, f"hold: {why}"
            return
        suction = self.suction_meas if self.suction_meas is not None else flt.last_suction
        flt.resume_from(q, bool(suction))
        self.holding = why
        self.last_status = f"hold: {why}"
        self.stats["holds"] += 1
        self._send(Output(np.asarray(q, float)[None], [bool(suction)], [self.dt], source, "held"))

    def _paced(self, times: list[float]) -> list[float]:
        """Point times of a passed command, delayed by what is left of the motion already sent.

        The filter clamps each step to what the speed limits allow in ``control_dt``, from the
        last command's target. A command that arrives before the arm got there (a burst of
        plans after a stall: measured 12-30 ms apart under ``wm chaos``) would otherwise make
        the arm cover the rest of the last step *and* this one within one period: up to
        several times the tool speed limit (a tool-speed event in the simulator)."""
        left = 0.0
        if self.motion_end is not None:
            left = self.motion_end - self.now()
            left = min(max(left, 0.0), self.motion_s)  # a clock jumped back: at most one motion
        return [t + left for t in times]

    def _send(self, o: Output) -> None:
        if not self.out(o):
            return
        self.stats["sent"] += 1
        self.sent_end = np.array(o.qs[-1], float)
        self.pacer.sent(o.qs, self.now())
        self.motion_s = float(o.times[-1])
        self.motion_end = self.now() + self.motion_s
