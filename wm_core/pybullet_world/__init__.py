"""A second, independent table-clearing world: PyBullet physics and its TinyRenderer.

It loads the arm from the project's URDF and builds the table, bin and camera from a cell
file, so it tests the URDF and the cell file against another engine and another renderer.
Simulator side only: the brain (plan, safety, models, train, calib, robot, cell, deploy and
the perception, planner and safety nodes) never imports it (``pyproject.toml``'s
import-linter contracts).
"""

from wm_core.pybullet_world.config import PyBulletWorldConfig
from wm_core.pybullet_world.world import PyBulletWorld

__all__ = ["PyBulletWorld", "PyBulletWorldConfig"]
