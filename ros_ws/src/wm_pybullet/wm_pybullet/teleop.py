"""A scripted teleoperator for the PyBullet world: the stand-in for a person with a joystick.

To teach the stack a new robot, a user records it at work (issue 15's loop: ``wm record``, then
``wm import-bag --objects N``, then fine-tuning). The zero-shot policy clears nothing there, so
the recordings come from teleoperation. Here a script plays the person: it sees the objects
(the world's ground truth, as a person's eyes would) and sends the arm, through the safety
node like any command, the moves of a pick-and-place (``wm_core.eval.policies.OraclePolicy``:
above the nearest object, down, suction on, up, over the bin, down, release), one tool step per
tick, turned into joints by the planner's own inverse kinematics (``wm_core.robot.action``),
on ``wm_bringup.stack.TELEOP_TOPIC``.

What reaches a recording is what a person's teleoperation would leave there: images, joints,
commands, suction and the vacuum switch. The ground truth steers the script; it is on no topic.
"""

from __future__ import annotations

import numpy as np

from wm_core.cell import Workcell
from wm_core.eval.policies import OraclePolicy
from wm_core.robot import ArmKinematics
from wm_core.robot.action import basis_joints, joint_target
from wm_core.sim import SceneConfig


class ScriptedTeleop:
    """One command per tick: ``command(info, q)`` -> (joint target [6], suction)."""

    def __init__(self, cell: Workcell, max_tool_step: float = 0.018) -> None:
        self.cell = cell
        self.scene = SceneConfig(max_tool_step=max_tool_step)
        self.policy = OraclePolicy(self.scene, cell)
        self.kin = ArmKinematics(base_pose=cell.arm.T_world_base)
        self.lo, self.hi = np.array(cell.workspace_lo), np.array(cell.workspace_hi)

        self.sent: np.ndarray | None = None  # [6] the last target sent

    def reset(self, seed: int) -> None:
        self.policy.reset(seed)
        self.sent = None

    def command(self, info: dict, q: np.ndarray) -> tuple[np.ndarray, bool]:
        """The world's ground truth ``info`` and the measured joints [6] -> the next joint
        target [6] and the suction. An unreachable step holds where the arm is."""
        a = self.policy.act({}, info)  # [4]
        basis = basis_joints(self.kin, q, self.sent)  # [6] as the planner steps from it
        target = joint_target(self.kin, a, basis, self.lo, self.hi, self.scene.max_tool_step)
        self.sent = target.q
        return target.q, bool(a[3] > 0)
