"""Bring-up of the world-model arm stack.

- :mod:`wm_bringup.stack`: the stack description (nodes, parameters file, remappings) read by
  both the launch files and the runner;
- :mod:`wm_bringup.runner`: ``python -m wm_bringup sim`` (in one process or one per node);
- :mod:`wm_bringup.launch_builder`: the launch_ros description built from the stack;
- :mod:`wm_bringup.recorder`: ``wm record``, the stack's topics into a rosbag2 MCAP bag;
- :mod:`wm_bringup.nodekit` and :mod:`wm_bringup.msgs`: what the node packages share
  (typed parameters, QoS, lifecycle start, message conversions, the suction convention).
"""
