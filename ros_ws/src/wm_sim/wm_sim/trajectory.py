"""The trajectory follower moved to :mod:`wm_bringup.trajectory` (simulator-agnostic: the MuJoCo
and PyBullet world nodes share it); this name stays for existing imports."""

from wm_bringup.trajectory import TrajectoryFollower

__all__ = ["TrajectoryFollower"]
