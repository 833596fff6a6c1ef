"""The arm: URDF (source of truth), kinematics and limits, shared by the simulator and planner."""

from wm_core.robot.kinematics import ArmKinematics, IKResult
from wm_core.robot.urdf import ArmDescription, load_arm

__all__ = ["ArmDescription", "ArmKinematics", "IKResult", "load_arm"]
