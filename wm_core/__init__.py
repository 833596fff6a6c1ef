"""wm_core: the ROS-free brain of the world-model arm stack.

Subpackages: ``robot`` (arm description, kinematics, limits), ``sim`` (MuJoCo table-clearing
world, metrics, safety event detectors), ``eval`` (episode runner, baseline policies, reports)
and ``bench`` (benchmarks printing JSON). ``wm_core`` never imports rclpy.
"""

__version__ = "0.1.0"
