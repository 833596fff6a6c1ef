"""The MuJoCo table-clearing world as a ROS 2 node: clock, camera, joint states and
trajectory execution."""
