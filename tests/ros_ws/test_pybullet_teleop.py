"""The PyBullet world's scripted teleoperator (wm_pybullet.teleop), in process: it clears the
table through the world's own step, and the stack description of ``teleop:=true``."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")  # the ROS workspace's packages are on the path with it
pytest.importorskip("pybullet")

from wm_bringup.stack import TELEOP_TOPIC, describe  # noqa: E402
from wm_pybullet.teleop import ScriptedTeleop  # noqa: E402

from wm_core.cell import PYBULLET_CELL_FILE, load_cell  # noqa: E402
from wm_core.pybullet_world import PyBulletWorldConfig  # noqa: E402
from wm_core.pybullet_world.world import PyBulletWorld  # noqa: E402


def test_the_teleoperator_clears_the_table_and_the_switch_sees_each_grip():
    cell = load_cell(PYBULLET_CELL_FILE)
    world = PyBulletWorld(PyBulletWorldConfig(n_objects=2, textured_fraction=0.0), cell)
    teleop = ScriptedTeleop(cell)
    try:
        world.reset(11)
        teleop.reset(11)
        held, steps = [], 0
        while steps < 900 and not (world.info()["cleared"].all()):
            q, on = teleop.command(world.info(), world.joint_state()[0])
            assert np.isfinite(q).all() and q.shape == (6,)
            world.step_joint(q, on)
            held.append(bool(world.info()["held"].any()))
            steps += 1
        m = world.episode_metrics()
        assert m["cleared"] == 2 and m["dropped"] == 0, (m, steps)
        assert not any(m["safety"].values()), m["safety"]
        rises = int(np.sum(np.diff(np.array([False, *held]).astype(int)) == 1))
        assert rises >= 2  # one grip per object at least
    finally:
        world.close()


def test_teleop_runs_the_world_and_the_safety_node_without_the_brain():
    stack = describe("real", sim="pybullet", arguments={"teleop": "true"})
    names = {n.name for n in stack.nodes}
    assert {"wm_pybullet", "wm_safety"} <= names
    assert not names & {"wm_perception", "wm_planner"}
    safety = next(n for n in stack.nodes if n.name == "wm_safety")
    assert ("/wm/plan_cmd", TELEOP_TOPIC) in safety.remappings
    world = next(n for n in stack.nodes if n.name == "wm_pybullet")
    assert ("teleop", True) in world.parameters
    with pytest.raises(ValueError, match="teleop:=true goes with sim:=pybullet"):
        describe("real", sim=True, arguments={"teleop": "true"})
