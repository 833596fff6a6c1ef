"""A second, independent table-clearing world: PyBullet physics and its TinyRenderer.

It loads the arm from the project's URDF and builds the table, bin and camera from a cell
file, so it tests the URDF and the cell file against another engine and another renderer.
Simulator side only: the brain (plan, safety, models, train, calib, robot, cell, deploy and
the perception, planner and safety nodes) never imports it (``pyproject.toml``'s
import-linter contracts).

``PyBulletWorld`` is imported on first use (it needs the ``pybullet`` package; the config
does not), so a node can refuse with one line where ``pybullet`` is not installed.
"""

from typing import Any

from wm_core.pybullet_world.config import PyBulletWorldConfig

__all__ = ["PyBulletWorld", "PyBulletWorldConfig"]


def __getattr__(name: str) -> Any:
    if name == "PyBulletWorld":
        from wm_core.pybullet_world.world import PyBulletWorld

        return PyBulletWorld
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
