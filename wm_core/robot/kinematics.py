"""Forward and inverse kinematics of the serial arm, computed from the URDF description.

Pure numpy. The inverse kinematics is damped least squares on the tool position plus a
"tool points straight down" constraint (two rotational DoF), which is what a suction gripper
needs; the remaining DoF (tool yaw) is held near its current value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wm_core.robot.urdf import ArmDescription, load_arm

TOOL_LINK = "suction_cup"


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    x, y, z = axis
    c, s = np.cos(angle), np.sin(angle)
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + s * k + (1 - c) * (k @ k)


@dataclass(frozen=True)
class IKResult:
    q: np.ndarray  # [6]
    position_error: float  # metres
    axis_error: float  # radians between tool z and world -z
    converged: bool


class ArmKinematics:
    """FK/IK for the arm described by a URDF."""

    def __init__(self, arm: ArmDescription | None = None, base_pose: np.ndarray | None = None):
        self.arm = arm or load_arm()
        self.base_pose = np.eye(4) if base_pose is None else np.asarray(base_pose, float)
        self.n = len(self.arm.actuated)
        self.lower, self.upper = self.arm.lower, self.arm.upper
        self.velocity_limit = self.arm.velocity_limit

    def link_frames(self, q: np.ndarray) -> dict[str, np.ndarray]:
        """World pose [4, 4] of every link frame for joint positions q [6]."""
        q = np.asarray(q, float)
        frames = {self.arm.base_link: self.base_pose.copy()}
        t = self.base_pose
        i = 0
        for j in self.arm.joints:
            t = t @ j.origin
            if j.type == "revolute":
                rot = np.eye(4)
                rot[:3, :3] = _axis_angle(j.axis, q[i])
                t = t @ rot
                i += 1
            frames[j.child] = t
        return frames

    def joint_axes_world(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions [6, 3] and axes [6, 3] of each actuated joint, in the world."""
        t = self.base_pose
        pos, axes = [], []
        i = 0
        for j in self.arm.joints:
            t = t @ j.origin
            if j.type == "revolute":
                pos.append(t[:3, 3].copy())
                axes.append(t[:3, :3] @ j.axis)
                rot = np.eye(4)
                rot[:3, :3] = _axis_angle(j.axis, q[i])
                t = t @ rot
                i += 1
        return np.array(pos), np.array(axes)

    def tool_pose(self, q: np.ndarray) -> np.ndarray:
        """World pose [4, 4] of the suction cup tip."""
        return self.link_frames(q)[TOOL_LINK]

    def tool_position(self, q: np.ndarray) -> np.ndarray:
        return self.tool_pose(q)[:3, 3]

    def jacobian(self, q: np.ndarray) -> np.ndarray:
        """Geometric Jacobian [6, n] of the tool tip: rows 0-2 linear, 3-5 angular."""
        pos, axes = self.joint_axes_world(q)
        p_tool = self.tool_position(q)
        jac = np.zeros((6, self.n))
        jac[:3] = np.cross(axes, p_tool - pos).T
        jac[3:] = axes.T
        return jac

    def ik_tool_down(
        self,
        target: np.ndarray,
        q_init: np.ndarray,
        iters: int = 30,
        damping: float = 1e-3,
        tol: float = 5e-4,
        yaw_weight: float = 0.05,
    ) -> IKResult:
        """Joint positions that put the tool tip at ``target`` [3] with the tool axis down.

        Damped least squares from ``q_init``; the tool yaw is softly held at its initial
        value. Joint limits are respected by clipping each iterate.
        """
        q = np.asarray(q_init, float).copy()
        down = np.array([0.0, 0.0, -1.0])
        yaw0 = self.tool_pose(q)[:3, 0]
        for _ in range(iters):
            pose = self.tool_pose(q)
            z_axis = pose[:3, 2]
            e_pos = target - pose[:3, 3]
            e_rot = np.cross(z_axis, down)  # rotation that brings tool z onto -z
            e_yaw = np.cross(pose[:3, 0], yaw0) * yaw_weight
            err = np.concatenate([e_pos, e_rot + e_yaw])
            if np.linalg.norm(e_pos) < tol and np.linalg.norm(e_rot) < 1e-3:
                break
            jac = self.jacobian(q)
            jjt = jac @ jac.T + damping * np.eye(6)
            dq = jac.T @ np.linalg.solve(jjt, err)
            q = np.clip(q + dq, self.lower, self.upper)
        pose = self.tool_pose(q)
        pe = float(np.linalg.norm(target - pose[:3, 3]))
        ae = float(np.arccos(np.clip(-pose[2, 2], -1.0, 1.0)))
        return IKResult(q, pe, ae, pe < 5 * tol and ae < 0.02)
