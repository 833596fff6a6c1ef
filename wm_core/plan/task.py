"""The hierarchical table-clearing layer: which object next, and where the tool should go.

It turns what the robot perceives into subgoals for the latent MPC:

- *objects* come from the object readout on the image latent (a learned probe; no
  simulator ground truth), in world coordinates from the camera calibration;
- *the tool and suction state* come from proprioception (joint encoders + forward
  kinematics), which a real arm always has.

Phases: choose (nearest detected object on the table, outside the bin) -> above (hover over
it) -> descend (suction on, down to its top) -> grip -> lift -> carry (over a bin slot) ->
lower -> release -> choose ... When the table reads empty ``empty_checks`` times in a row,
"done" is checked before it is declared: park (the arm goes to a pose from which it hides
none of the pick area, computed from the cell's camera and the arm's kinematics,
``wm_core.plan.park``) -> verify (wait ``verify_settle_steps`` fresh frames, then read
``verify_reads`` frames at the lower ``verify_threshold``) -> done only if every one of
those reads is empty; anything seen goes back to the picking. The target is re-read from
each new latent until the tool is close enough to occlude it, then locked. A task that
starts with the suction already on (the planner restarted while the arm held something)
resumes at the lift, from where the tool is: the lift's check then tells a held object
(carry it to the bin) from none (pick again), so nothing is let go over the table. After the
lift, a detection still resting where the target was, and none in the air under the tool,
means the pick failed: the spot is remembered, other objects go first, and the next tries
there probe a few centimetres to each side (two objects close together can read as one
detection between them, which no straight pick can take).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from wm_core.cell import Workcell, sim_cell
from wm_core.plan.config import TaskConfig
from wm_core.plan.park import park_pose

log = logging.getLogger(__name__)

HELD_Z = 0.06  # detections above this (m) are not resting objects (their centres sit at most
# 0.045 m up, the largest half size the scene allows): held objects, or the arm itself
REREAD_RADIUS = 0.04  # m: a re-read detection further than this from the target is another thing
REREAD_DZ = 0.015  # m: ... and one whose height differs more than this is the arm over it
PROBE_OFFSET = 0.035  # m: where a pick failed, the next tries probe this far to each side
DESCEND_BELOW_TOP = 0.03  # m below the estimated object top that the descent aims for
LIFT_STEP = 0.03  # m: the lift's subgoal leads the tool by this much
STALL_DZ = 0.002  # m: a descent step shorter than this means the tool is on something


@dataclass(frozen=True)
class Subgoal:
    tool: np.ndarray  # [3] tool position (m)
    suction: bool
    phase: str
    done: bool = False


BIN_MARGIN = 0.03  # m around the bin's walls inside which a detection counts as in the bin


def route(tool_xy, goal_xy, base_xy, r_min: float, step: float) -> np.ndarray:
    """The next transport waypoint [2] from ``tool_xy`` towards ``goal_xy``: ``step`` m along
    the path interpolated in polar coordinates about the arm's base (radius and bearing
    change together), never closer than ``r_min`` to the base. A straight line between two
    far points can pass next to the base, where the arm folds and the IK fails; the polar
    path swings around it, as the shoulder pan joint would. A goal inside ``r_min`` lowers
    the floor to its own radius, so every goal stays reachable."""
    t, g = np.asarray(tool_xy, float) - base_xy, np.asarray(goal_xy, float) - base_xy
    rt, rg = np.hypot(*t), np.hypot(*g)
    r_min = min(r_min, rg)
    dth = (np.arctan2(g[1], g[0]) - np.arctan2(t[1], t[0]) + np.pi) % (2 * np.pi) - np.pi
    length = np.hypot(rg - rt, max(r_min, 0.5 * (rt + rg)) * dth)
    if length <= step and rt >= r_min:
        return np.asarray(goal_xy, float)
    f = min(1.0, step / max(length, 1e-9))
    r = max(r_min, rt + f * (rg - rt))
    th = np.arctan2(t[1], t[0]) + f * dth
    return np.asarray(base_xy, float) + r * np.array([np.cos(th), np.sin(th)])


def table_objects(detections: np.ndarray, cell: Workcell) -> np.ndarray:
    """Detections [M, 4] (x, y, z, prob) -> those resting on the table outside the bin."""
    top = cell.table.top_z
    keep = [
        d for d in detections if d[2] - top < HELD_Z and not cell.bin.contains_xy(d[:2], BIN_MARGIN)
    ]
    return np.array(keep).reshape(-1, 4)


class TableClearingTask:
    def __init__(
        self,
        cfg: TaskConfig | None = None,
        cell: Workcell | None = None,
        park: np.ndarray | None = None,
    ):
        self.cfg = cfg or TaskConfig()
        self.cell = cell or sim_cell()  # the bin, the table top, the workspace, the camera
        self.base_xy = self.cell.base_xy  # [2] the arm base axis, world frame (m)
        # [3] tool (m). Computed here, not on first use: the search takes 1-3 s on one core,
        # and the first use is a control step (the first time the table reads empty), which
        # it stalled by that much (issue 12's 2.9 s end-to-end outlier)
        if park is None and self.cfg.verify_done:
            park = park_pose(self.cell, self.cfg.min_reach_radius).tool
        self._park = None if park is None else np.asarray(park, float)
        self.reset()

    @property
    def park(self) -> np.ndarray:
        """[3] the tool position from which the arm hides the least of the table (computed
        from the cell when the task is made; on first use when ``verify_done`` is off)."""
        if self._park is None:
            self._park = park_pose(self.cell, self.cfg.min_reach_radius).tool
        return self._park

    def reset(self) -> None:
        self.phase = "choose"
        self.target: np.ndarray | None = None  # [3] object centre estimate
        self.locked = False
        self.wait = 0
        self.empty = 0
        self.attempts = 0
        self.picks = 0
        self.failures: list[np.ndarray] = []  # [2] xy of each failed pick
        self.retry = False  # the next choice re-tries after a surprise: not a new attempt
        self.last_tool_z: float | None = None
        self.lift_xy = np.zeros(2)  # [2] where the lift started (m)
        self.started = False  # the first update decides whether to resume a pick
        self.verifications = 0  # park-and-re-read checks of an empty table
        self.verify_found = 0  # ... that found an object the ordinary reads had missed

    def on_surprise(self) -> None:
        """The world did not do what the model predicted: unlock and re-read the target."""
        self.locked = False
        if self.phase in ("above", "descend"):
            self.phase, self.retry = "choose", True

    def _failed_near(self, xy: np.ndarray) -> int:
        return sum(np.linalg.norm(f - xy) < REREAD_RADIUS + PROBE_OFFSET for f in self.failures)

    def _choose(self, objs: np.ndarray, tool: np.ndarray) -> None:
        """Target the nearest detected object, those with the fewest failed picks first; at a
        spot that failed k times, probe PROBE_OFFSET to one of four sides."""
        fails = np.array([self._failed_near(o[:2]) for o in objs])
        dist = np.linalg.norm(objs[:, :2] - tool[:2], axis=1)
        i = int(np.lexsort((dist, fails))[0])
        self.target, self.locked = objs[i, :3].copy(), False
        if fails[i]:
            ang = np.pi / 2 * (fails[i] - 1)
            self.target[:2] += PROBE_OFFSET * np.array([np.cos(ang), np.sin(ang)])
            self.locked = True  # a probe: the detection would pull it back to the failed spot

    def _bin_slot(self) -> np.ndarray:
        slot = self.picks % 4
        off = 0.055 * np.array([1 if slot % 2 else -1, 1 if slot // 2 else -1])
        return np.array(self.cell.bin.center) + off

    def update(self, detections: np.ndarray, tool: np.ndarray, suction: bool) -> Subgoal:
        """detections [M, 4] from the readout (at ``verify_threshold`` or above: the ordinary
        phases keep those above ``detect_threshold``), tool [3] from FK, suction from the
        arm."""
        c = self.cfg
        weak = np.asarray(detections, float).reshape(-1, 4)  # [M, 4]
        detections = weak[weak[:, 3] > c.detect_threshold]  # [M', 4]
        objs = table_objects(detections, self.cell)
        z0 = self.cell.table.top_z  # heights in TaskConfig are above the table top
        if not self.started:
            self.started = True
            if suction and self.phase == "choose":  # restarted mid-pick: lift and look
                log.info("task starts with the suction on: resuming at the lift")
                self.phase, self.lift_xy = "lift", tool[:2].copy()
                self.target, self.locked = np.asarray(tool, float).copy(), True
        hover_z, release_z = z0 + c.hover_z, z0 + c.release_z
        hover = lambda xy: np.array([xy[0], xy[1], hover_z])  # noqa: E731
        near = lambda goal: np.linalg.norm(tool - goal) < c.reach_tol  # noqa: E731

        def via(goal: np.ndarray) -> np.ndarray:  # transport waypoint towards goal [3]
            xy = route(tool[:2], goal[:2], self.base_xy, c.min_reach_radius, c.route_step)
            return np.array([*xy, goal[2]])

        if self.phase == "choose":
            if self.attempts >= c.max_attempts:
                return Subgoal(hover(self._bin_slot()), False, "gave_up", True)
            if len(objs) == 0:
                self.empty += 1
                if self.empty < c.empty_checks:
                    return Subgoal(hover(self._bin_slot()), False, "choose")
                self.empty = 0
                if not c.verify_done:
                    return Subgoal(hover(self._bin_slot()), False, "done", True)
                log.info("the table reads empty: parking out of view to check")
                self.phase, self.wait = "park", c.park_max_steps
            else:
                self.empty = 0
                self._choose(objs, tool)
                self.attempts += 0 if self.retry else 1
                self.phase, self.retry = "above", False
        if self.phase == "park":
            self.wait -= 1
            if np.linalg.norm(tool - self.park) > c.park_tol and self.wait > 0:
                return Subgoal(via(self.park), False, "park")
            if self.wait <= 0:
                log.warning("park pose not reached in %d steps: reading here", c.park_max_steps)
            self.phase, self.wait = "verify", c.verify_settle_steps + c.verify_reads
            self.verifications += 1
        if self.phase == "verify":
            self.wait -= 1
            if self.wait < c.verify_reads:  # settled: this frame was taken with the arm parked
                seen = table_objects(weak, self.cell)  # [K, 4] at verify_threshold
                if len(seen):
                    log.info(
                        "the check found %d object(s) the ordinary reads missed (p=%.2f at %s)",
                        len(seen),
                        seen[:, 3].max(),
                        np.round(seen[np.argmax(seen[:, 3]), :3], 3),
                    )
                    self.verify_found += 1
                    self._choose(seen, tool)
                    self.attempts += 1
                    self.phase = "above"
                    return Subgoal(via(hover(self.target[:2])), False, "above")
            if self.wait <= 0:
                log.info("the table is empty, checked with the arm parked out of view: done")
                return Subgoal(self.park.copy(), False, "done", True)
            return Subgoal(self.park.copy(), False, "verify")
        if self.phase in ("above", "descend") and not self.locked and len(objs):
            # re-read the target from this frame: the detection nearest the current estimate
            j = int(np.argmin(np.linalg.norm(objs[:, :2] - self.target[:2], axis=1)))
            close = np.linalg.norm(objs[j, :2] - self.target[:2]) < REREAD_RADIUS
            if close and abs(objs[j, 2] - self.target[2]) < REREAD_DZ:
                self.target = objs[j, :3].copy()
        if np.linalg.norm(tool[:2] - self.target[:2]) < c.lock_radius:
            self.locked = True
        top = z0 + 2.0 * (self.target[2] - z0)  # a resting object's centre: half its height
        if self.phase == "above":
            goal = hover(self.target[:2])
            if np.linalg.norm(tool[:2] - goal[:2]) < c.reach_tol * 0.5 and near(goal):
                self.phase = "descend"
            else:
                return Subgoal(via(goal), False, "above")
        if self.phase == "descend":
            # Aim below the estimated top (the height estimate is the least certain number)
            # and stop on contact: the tool stalls on the object (or reaches the aim point).
            aim = max(self.cell.workspace_lo[2], top - DESCEND_BELOW_TOP)
            goal = np.array([*self.target[:2], aim])
            stalled = self.last_tool_z is not None and self.last_tool_z - tool[2] < STALL_DZ
            self.last_tool_z = float(tool[2])
            if tool[2] < aim + 0.003 or (stalled and tool[2] < top + 0.03):
                self.phase, self.wait, self.last_tool_z = "grip", c.grip_steps, None
            else:
                return Subgoal(goal, True, "descend")
        if self.phase == "grip":
            self.wait -= 1
            if self.wait <= 0:
                self.phase, self.lift_xy = "lift", tool[:2].copy()
            return Subgoal(np.array([*tool[:2], tool[2] - 0.004]), True, "grip")
        if self.phase == "lift":
            # straight up from where the object was gripped, a few cm at a time: with the
            # whole lift height in the goal its cost swamps sideways error, and the held
            # object is dragged along the table, then springs free
            goal = np.array([*self.lift_xy, min(hover_z, tool[2] + LIFT_STEP)])
            if tool[2] > hover_z - 0.015:
                left = np.linalg.norm(objs[:, :2] - self.target[:2], axis=1) < REREAD_RADIUS
                d = np.asarray(detections).reshape(-1, 4)
                under = np.linalg.norm(d[:, :2] - tool[:2], axis=1) < 0.06
                up = (d[:, 2] - z0 >= HELD_Z) & under
                if left.any() and not up.any():  # still resting there, nothing under the tool
                    log.info("pick at %s failed: the object is still there", self.target[:2])
                    self.failures.append(self.target[:2].copy())
                    self.phase = "choose"
                    return Subgoal(goal, False, "lift")
                self.phase = "carry"
            else:
                return Subgoal(goal, True, "lift")
        if self.phase == "carry":
            goal = hover(self._bin_slot())
            if near(goal):
                self.phase = "lower"
            else:
                return Subgoal(via(goal), True, "carry")
        if self.phase == "lower":
            goal = np.array([*self._bin_slot(), release_z])
            if near(goal):
                self.phase, self.wait = "release", c.release_steps
            else:
                return Subgoal(goal, True, "lower")
        if self.phase == "release":
            self.wait -= 1
            if self.wait <= 0:
                self.phase = "choose"
                self.picks += 1
            return Subgoal(np.array([*self._bin_slot(), c.release_z]), False, "release")
        return Subgoal(hover(tool[:2]), suction, self.phase)
