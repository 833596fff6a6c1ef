"""wm_core: the ROS-free brain of the world-model arm stack.

Subpackages: ``robot`` (arm description, kinematics, limits), ``sim`` (MuJoCo table-clearing
world, metrics, safety event detectors), ``eval`` (episode runner, baseline policies, reports)
and ``bench`` (benchmarks printing JSON). ``wm_core`` never imports rclpy.
"""

import os

# Headless MuJoCo rendering: EGL unless the caller chose another backend, and software
# rendering (Mesa llvmpipe) is faster with LP_NUM_THREADS=0. Defaults only: an exported value
# wins. Set here, before any submodule can import mujoco, because MuJoCo reads it at import.
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("LP_NUM_THREADS", "0")

__version__ = "0.1.0"
