"""The Gazebo suction relay's decisions: attach the object under the cup on a rising edge,
detach it on a falling edge, release everything at start-up."""

from __future__ import annotations

import numpy as np

from wm_core.cell import sim_cell
from wm_core.gazebo.suction import SuctionRelay
from wm_core.robot.kinematics import ArmKinematics

CELL = sim_cell()
NAMES = CELL.arm.joint_names


def relay() -> SuctionRelay:
    kin = ArmKinematics(base_pose=CELL.arm.T_world_base)
    return SuctionRelay(("obj0", "obj1"), kin, NAMES)


def test_rising_edge_attaches_the_object_under_the_cup_and_falling_edge_detaches_it():
    r = relay()
    assert r.command(True) == []  # no joint state yet: nothing is picked
    assert r.command(False) == []
    # joint states in another order, with the suction pseudo-joint: matched by name
    r.joints(["suction_cup", *reversed(NAMES)], [0.0, *reversed(CELL.arm.home_q)])
    cup = r.cup_position()
    kin = ArmKinematics(base_pose=CELL.arm.T_world_base)
    np.testing.assert_allclose(cup, kin.tool_position(np.array(CELL.arm.home_q)), atol=1e-9)
    r.object_positions({"obj0": cup - [0, 0, 0.03], "obj1": cup + [0.3, 0, 0], "other": cup})
    assert set(r.positions) == {"obj0", "obj1"}
    assert r.release_all() == [("detach", "obj0"), ("detach", "obj1")]
    assert r.command(True) == [("attach", "obj0")]
    assert r.command(True) == []  # only edges act
    assert r.release_all() == []  # never drops what it holds
    assert r.command(False) == [("detach", "obj0")]
    r.object_positions({"obj0": cup + [0.2, 0, 0]})
    assert r.command(True) == []  # nothing within reach
    assert r.command(False) == []


def test_a_joint_state_without_the_arm_joints_is_ignored():
    r = relay()
    r.joints(["a", "b"], [0.0, 1.0])
    assert r.q is None and r.cup_position() is None
