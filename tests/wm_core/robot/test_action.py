"""The one action -> joint-target mapping (commanded basis, measured fallback)."""

import numpy as np

from wm_core.cell import sim_cell
from wm_core.robot import ArmKinematics
from wm_core.robot.action import BASIS_RESYNC_M, basis_joints, joint_target

KIN = ArmKinematics()
CELL = sim_cell()
HOME = np.array(CELL.arm.home_q)
LO, HI = np.array(CELL.workspace_lo), np.array(CELL.workspace_hi)


def test_a_unit_action_moves_the_tool_one_step_from_the_basis_pointing_down():
    t = joint_target(KIN, np.array([1.0, 0.0, -0.5, 1.0]), HOME, LO, HI, 0.018)
    start = KIN.tool_position(HOME)
    assert t.converged
    np.testing.assert_allclose(t.tool, start + [0.018, 0.0, -0.009])
    np.testing.assert_allclose(KIN.tool_position(t.q), t.tool, atol=1e-3)
    # out of range actions are clipped to [-1, 1]; the target to the workspace box
    far = joint_target(KIN, np.array([50.0, 0.0, 0.0, 0.0]), HOME, LO, HI, 0.018)
    np.testing.assert_allclose(far.tool, t.tool + [0.0, 0.0, 0.009])
    low = joint_target(KIN, np.array([0.0, 0.0, -1.0, 0.0]), HOME, LO, HI, 1.0)
    assert low.tool[2] == LO[2]


def test_the_basis_is_the_last_command_unless_the_arm_did_not_follow_it():
    near = HOME + np.array([0.04, 0, 0, 0, 0, 0])  # a pan: the tool moves a few cm
    far = HOME + np.array([0.3, 0, 0, 0, 0, 0])
    gap = np.linalg.norm(KIN.tool_position(near) - KIN.tool_position(HOME))
    assert 0.01 < gap < BASIS_RESYNC_M
    np.testing.assert_array_equal(basis_joints(KIN, HOME, None), HOME)
    np.testing.assert_array_equal(basis_joints(KIN, HOME, near), near)
    np.testing.assert_array_equal(basis_joints(KIN, HOME, far), HOME)


def test_the_simulator_maps_actions_through_it_from_its_last_command():
    from wm_core.sim import SceneConfig, TableClearingEnv

    env = TableClearingEnv(SceneConfig(n_objects=1, render_images=False))
    env.reset(0)
    for a in ([1.0, 0.0, 0.0, -1.0], [0.0, -1.0, 0.5, 1.0]):
        a = np.array(a)
        want = joint_target(KIN, a, env.q_cmd, LO, HI, env.cfg.max_tool_step)
        q, tool, ok = env.cartesian_target(a)
        np.testing.assert_array_equal(q, want.q)
        np.testing.assert_array_equal(tool, want.tool)
        env.step(a)
    env.close()
