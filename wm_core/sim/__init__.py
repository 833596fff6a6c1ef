"""The MuJoCo table-clearing world: scene, env, safety event detectors, metrics.

Headless rendering uses EGL unless the caller chose another backend; software rendering is
faster with ``LP_NUM_THREADS=0``. Both are only defaults: an exported value wins.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("LP_NUM_THREADS", "0")

from wm_core.sim.config import SceneConfig  # noqa: E402
from wm_core.sim.env import TableClearingEnv  # noqa: E402

__all__ = ["SceneConfig", "TableClearingEnv"]
