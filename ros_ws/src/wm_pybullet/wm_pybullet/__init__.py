"""A second, independent table-clearing world (PyBullet) as a ROS 2 node: the same topics as a
real arm and camera, and the MuJoCo node's episode interface for scoring."""
