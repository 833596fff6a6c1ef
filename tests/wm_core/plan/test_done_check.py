"""'Done' is checked before it is declared: park out of view, re-read, then done.

Scripted perception throughout: a readout that misses an object while the arm hides it, or
reads it only weakly (below ``detect_threshold``), and a truly empty table."""

import numpy as np
import pytest

from wm_core.cell import sim_cell
from wm_core.config import ConfigError
from wm_core.plan.config import TaskConfig
from wm_core.plan.park import occluded_fraction, park_pose, pick_area
from wm_core.plan.task import TableClearingTask
from wm_core.robot import ArmKinematics
from wm_core.robot.capsules import ArmCapsules

PARK = np.array([0.355, 0.133, 0.40])  # [3] a scripted park pose (the tests of the task)
STEP = 0.018  # m per step: a perfect follower at the arm's max tool step
NONE = np.zeros((0, 4))


def run(task, readout, tool, steps=300):
    """Drive the task with ``readout(step, tool) -> detections [M, 4]`` and a follower that
    moves the tool towards each subgoal; -> (subgoals, tools) up to and including done, or
    the first subgoal that goes back to picking (``above``)."""
    subs, tools = [], []
    for k in range(steps):
        g = task.update(readout(k, tool), tool, False)
        subs.append(g)
        tools.append(tool.copy())
        if g.done or g.phase == "above":
            break
        tool = tool + np.clip(g.tool - tool, -STEP, STEP)
    return subs, tools


def test_an_object_hidden_by_the_arm_over_the_bin_is_found_by_the_parked_check():
    obj = np.array([0.40, 0.45, 0.025, 0.9])  # beside the bin, under the arm hovering there

    def readout(k, tool):  # the arm hides it whenever the tool is within 0.25 m (xy)
        hidden = np.linalg.norm(tool[:2] - obj[:2]) < 0.25
        return NONE if hidden else obj[None]

    start = np.array([0.2, 0.43, 0.22])  # hovering over the bin, where a release ends
    # without the check the task declares the table clear with the object on it
    old = TableClearingTask(TaskConfig(verify_done=False), park=PARK)
    subs, _ = run(old, readout, start.copy())
    assert subs[-1].done and len(subs) == TaskConfig().empty_checks
    assert old.target is None  # it never saw the object
    # with it, done is not declared: the parked re-read sees the object and picking resumes
    task = TableClearingTask(TaskConfig(), park=PARK)
    subs, tools = run(task, readout, start.copy(), steps=120)
    assert not any(g.done for g in subs)
    phases = [g.phase for g in subs]
    first_above = len(phases) - 1
    assert phases[first_above] == "above"
    assert "park" in phases[:first_above] and "verify" in phases[:first_above]
    assert np.linalg.norm(tools[first_above - 1] - PARK) <= TaskConfig().park_tol + STEP
    assert np.allclose(task.target[:2], obj[:2]) and task.verify_found == 1


def test_a_weak_detection_is_ignored_by_the_ordinary_reads_but_found_by_the_check():
    weak = np.array([[0.5, -0.1, 0.025, 0.3]])  # between verify_threshold and detect_threshold
    cfg = TaskConfig()
    assert cfg.verify_threshold < 0.3 < cfg.detect_threshold
    task = TableClearingTask(cfg, park=PARK)
    g = task.update(weak, np.array([0.2, 0.43, 0.22]), False)
    assert g.phase == "choose" and task.target is None  # the ordinary read: an empty table
    subs, _ = run(task, lambda k, tool: weak, np.array([0.2, 0.43, 0.22]), steps=120)
    assert not any(g.done for g in subs) and subs[-1].phase == "above"
    assert np.allclose(task.target[:2], weak[0, :2]) and task.attempts == 1


def test_a_first_read_miss_at_the_park_pose_is_caught_by_the_later_reads():
    obj = np.array([[0.45, 0.05, 0.025, 0.9]])
    reads_at_park = []

    def readout(k, tool):  # blind until the arm has been parked for a few frames
        at_park = np.linalg.norm(tool - PARK) < 1e-6
        reads_at_park.append(at_park)
        return obj if sum(reads_at_park) > 4 else NONE

    task = TableClearingTask(TaskConfig(), park=PARK)
    subs, _ = run(task, readout, np.array([0.2, 0.43, 0.22]), steps=150)
    assert not any(g.done for g in subs) and subs[-1].phase == "above"


def test_a_truly_empty_table_ends_done_in_bounded_time_and_only_after_the_parked_reads():
    cfg = TaskConfig()
    task = TableClearingTask(cfg, park=PARK)
    start = np.array([0.2, 0.43, 0.22])
    subs, tools = run(task, lambda k, tool: NONE, start.copy())
    assert subs[-1].done and subs[-1].phase == "done"
    assert not any(g.done for g in subs[:-1])
    # bounded: the empty reads, the trip to the park pose, the settling and the reads
    trip = int(np.ceil(np.abs(PARK - start).max() / STEP)) + 1
    bound = cfg.empty_checks + trip + cfg.verify_settle_steps + cfg.verify_reads + 2
    assert len(subs) <= bound
    # the reads that decided it were all taken at the park pose
    at_park = [np.linalg.norm(t - PARK) <= cfg.park_tol for t in tools]
    assert all(at_park[-(cfg.verify_settle_steps + cfg.verify_reads) :])
    assert task.verifications == 1 and task.verify_found == 0


def test_an_unreachable_park_pose_still_ends_done_in_bounded_time():
    cfg = TaskConfig(park_max_steps=20)
    task = TableClearingTask(cfg, park=PARK)
    tool = np.array([0.2, 0.43, 0.22])  # the arm never moves (e.g. held by the safety filter)
    calls = 0
    while calls < 200:
        calls += 1
        g = task.update(NONE, tool, False)
        if g.done:
            break
    assert g.done and task.verifications == 1
    # not before the park attempt timed out and the reads were taken; not much after
    assert 20 + cfg.verify_reads <= calls
    assert calls <= cfg.empty_checks + 20 + cfg.verify_settle_steps + cfg.verify_reads


def test_verify_threshold_above_detect_threshold_is_rejected():
    with pytest.raises(ConfigError, match="verify_threshold"):
        TaskConfig(detect_threshold=0.4, verify_threshold=0.5)


def test_the_park_pose_hides_less_of_the_pick_area_than_hovering_over_it():
    cell = sim_cell()
    pose = park_pose(cell, TaskConfig().min_reach_radius)
    kin = ArmKinematics(base_pose=cell.arm.T_world_base)
    assert np.linalg.norm(kin.tool_position(pose.q) - pose.tool) < 0.01  # IK consistent
    lo, hi = np.array(cell.workspace_lo), np.array(cell.workspace_hi)
    assert np.all(pose.tool >= lo) and np.all(pose.tool <= hi)
    # a tool hovering low over the middle of the pick area hides a real part of it
    area = pick_area(cell, TaskConfig().min_reach_radius)  # [P, 3]
    assert len(area) > 100
    over = kin.ik_tool_down(np.array([0.5, 0.0, 0.12]), np.array(cell.arm.home_q), iters=60)
    assert over.converged
    caps = ArmCapsules(base_pose=cell.arm.T_world_base)
    hidden = occluded_fraction(cell, caps, np.stack([over.q, pose.q]), area)  # [2]
    assert hidden[0] > 0.02 and hidden[1] < 0.01 and pose.occluded == pytest.approx(hidden[1])


def test_the_park_pose_is_computed_when_the_task_is_made_not_in_a_control_step(monkeypatch):
    """The park search takes seconds; done lazily, it ran inside the control step in which the
    table first read empty, and stalled the arm's commands that long."""
    import wm_core.plan.task as task_module

    calls = []

    def counting(cell, min_radius):
        calls.append(cell)
        return park_pose(cell, min_radius)

    monkeypatch.setattr(task_module, "park_pose", counting)
    task = TableClearingTask(TaskConfig())
    assert len(calls) == 1
    tool = np.array([0.4, 0.0, 0.22])
    for _ in range(TaskConfig().empty_checks + 1):  # an empty table: the task goes to park
        sub = task.update(np.zeros((0, 4)), tool, False)
    assert sub.phase == "park" and len(calls) == 1
