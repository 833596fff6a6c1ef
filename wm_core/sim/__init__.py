"""The MuJoCo table-clearing world: scene, env, safety event detectors, metrics.

Headless rendering defaults (EGL) are set in ``wm_core/__init__.py``.
"""

from wm_core.sim.config import SceneConfig
from wm_core.sim.env import TableClearingEnv

__all__ = ["SceneConfig", "TableClearingEnv"]
