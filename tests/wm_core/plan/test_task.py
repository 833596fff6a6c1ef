"""The table-clearing task layer on scripted perception: phases, locking, done."""

import numpy as np
import torch

from wm_core.plan.config import TaskConfig
from wm_core.plan.surprise import SurpriseMonitor
from wm_core.plan.task import TableClearingTask, in_bin, table_objects
from wm_core.sim.config import LAYOUT


def test_detections_in_the_bin_or_in_the_air_are_not_table_objects():
    bin_xy = np.array(LAYOUT.bin_center)
    det = np.array([[0.45, 0.0, 0.025, 0.9], [*bin_xy, 0.03, 0.9], [0.4, 0.1, 0.2, 0.8]])
    objs = table_objects(det)
    assert objs.shape == (1, 4) and objs[0, 0] == 0.45
    assert in_bin(bin_xy) and not in_bin(np.array([0.45, 0.0]))


def test_pick_and_place_cycle_then_done():
    cfg = TaskConfig(empty_checks=2)
    task = TableClearingTask(cfg)
    obj = np.array([[0.45, 0.05, 0.025, 0.95]])
    tool = np.array([0.3, 0.1, 0.3])
    phases = []
    for _ in range(400):
        g = task.update(obj if task.picks == 0 else np.zeros((0, 4)), tool, False)
        phases.append(g.phase)
        if g.done:
            break
        tool = tool + np.clip(g.tool - tool, -0.018, 0.018)  # a perfect follower
        if g.phase == "descend" and tool[2] <= 2 * 0.025 + 0.003:
            tool[2] = 2 * 0.025  # stopped by the object's top
    assert g.done and task.picks == 1
    order = [p for i, p in enumerate(phases) if i == 0 or p != phases[i - 1]]
    assert order[:8] == ["above", "descend", "grip", "lift", "carry", "lower", "release", "choose"]
    # descend asked for suction, release switched it off
    assert task.target is not None and abs(task.target[0] - 0.45) < 1e-9


def test_target_locks_when_the_tool_occludes_it():
    task = TableClearingTask(TaskConfig(lock_radius=0.06))
    task.update(np.array([[0.45, 0.05, 0.025, 0.9]]), np.array([0.3, 0.1, 0.3]), False)
    task.update(np.array([[0.46, 0.05, 0.025, 0.9]]), np.array([0.44, 0.05, 0.22]), False)
    assert task.locked
    task.update(np.array([[0.50, 0.05, 0.025, 0.9]]), np.array([0.45, 0.05, 0.22]), False)
    assert abs(task.target[0] - 0.46) < 1e-9  # not moved by the occluded reading


def test_surprise_spikes_on_a_jump_and_counts_rising_edges():
    mon = SurpriseMonitor(threshold=6.0, warmup=3)
    rng = np.random.default_rng(0)
    z = torch.zeros(1, 64, 32)
    scores = []
    for t in range(20):
        pred = z + 0.01 * torch.tensor(rng.normal(size=z.shape), dtype=torch.float32)
        mon.expect(pred)
        obs = z.clone()
        if t in (12, 13):
            obs[0, 5] += 1.0  # one patch jumps: an object teleported
        scores.append(mon.observe(obs))
    assert max(scores[4:12]) < 3.0
    assert scores[12] > 6.0 and mon.events == 1
    assert scores[14] < 6.0 and not mon.active
