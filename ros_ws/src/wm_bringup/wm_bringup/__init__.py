"""Bring-up of the world-model arm stack.

The node packages (wm_sim, wm_perception, wm_planner, wm_safety), the stack description and
the launch files land with the ROS 2 stack issue; this package already builds with colcon.
"""
