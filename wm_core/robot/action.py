"""What an action means, in one place: a clipped Cartesian tool delta -> a joint target.

The action is ``[dx, dy, dz, suction]`` in [-1, 1]; ``a[:3] * max_tool_step`` moves the tool
target, which is clipped to the cell's workspace box, and inverse kinematics (tool pointing
down, seeded at the basis joints) turns it into joint positions. The simulator
(``TableClearingEnv.cartesian_target``), the planner node and the evaluator's filter loop all
call :func:`joint_target`.

**The basis is the commanded tool**: the forward kinematics of the last joint command that
reached the arm (after the safety filter), not of the measured joints. Why:

1. It is what the world model was trained on: ``wm collect`` and ``wm eval`` drive the simulator
   this way, so a unit action means the same displacement at run time as in the training data.
2. A servo that lags (a load, gravity sag, a slow controller) does not eat the motion: with a
   measured basis every command restarts from the lagging arm, so each step is shortened by
   the lag and a steady sag is never made up.
3. It cannot wind up: the safety filter bounds how far the commanded tool may lead the measured
   one (``FilterConfig.max_tool_lead``), and a caller falls back to the measured joints when
   the last command is unknown, stale, or far from where the arm is (a reset, a blocked or
   hand-guided arm): :func:`basis_joints`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wm_core.robot.kinematics import ArmKinematics

BASIS_RESYNC_M = 0.05
"""A last command whose tool is further than this (m) from the measured tool is not a basis
any more: the arm did not follow it (reset, collision, hand-guiding); use the measured joints."""


@dataclass(frozen=True)
class ActionTarget:
    q: np.ndarray  # [6] joint target (the basis joints when the IK did not converge)
    tool: np.ndarray  # [3] tool target (m, world), clipped to the workspace
    converged: bool


def joint_target(
    kin: ArmKinematics,
    action: np.ndarray,
    basis_q: np.ndarray,
    workspace_lo: np.ndarray,
    workspace_hi: np.ndarray,
    max_tool_step: float,
) -> ActionTarget:
    """Action [4] from the basis joints [6] -> the joint target (see the module docstring)."""
    a = np.clip(np.asarray(action, float).reshape(-1), -1.0, 1.0)
    basis_q = np.asarray(basis_q, float)
    tool = np.clip(kin.tool_position(basis_q) + a[:3] * max_tool_step, workspace_lo, workspace_hi)
    ik = kin.ik_tool_down(tool, basis_q)
    return ActionTarget(ik.q if ik.converged else basis_q.copy(), tool, bool(ik.converged))


def basis_joints(
    kin: ArmKinematics,
    measured_q: np.ndarray,
    commanded_q: np.ndarray | None,
    resync_m: float = BASIS_RESYNC_M,
) -> np.ndarray:
    """The last command sent to the arm [6], or the measured joints [6] when there is none or
    its tool is more than ``resync_m`` from the measured tool."""
    measured_q = np.asarray(measured_q, float)
    if commanded_q is None:
        return measured_q.copy()
    commanded_q = np.asarray(commanded_q, float)
    gap = np.linalg.norm(kin.tool_position(commanded_q) - kin.tool_position(measured_q))
    return commanded_q.copy() if gap <= resync_m else measured_q.copy()
