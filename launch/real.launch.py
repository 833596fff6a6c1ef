"""Real arm: perception + planner + safety against a ros2_control arm and a camera driver.

    ros2 launch wm_bringup real.launch.py [shadow:=true] [cell_file:=FILE]
        [joint_names:="[j1, j2, j3, j4, j5, j6]"] [arm_topic:=...] [image_topic:=...]
        [camera_info_topic:=...] [suction_topic:=...] [use_camera_info_intrinsics:=true]
        [backend:=tensorrt] [params_file:=FILE] [use_rviz:=true] [sim:=true|pybullet]

No simulator (``sim:=false``): the safety node drives ``arm_topic``
(``/scaled_joint_trajectory_controller/joint_trajectory`` by default), perception reads
``image_topic`` (``/camera/color/image_raw``), the planner checks ``camera_info_topic``
against the cell file's camera; suction goes out on ``suction_topic`` (std_msgs/Bool).
``shadow:=true`` runs everything but sends nothing to the arm or the suction: the safety node
publishes what it would send on ``/wm/shadow/joint_trajectory``. The safety node is always
included (no argument removes it). ``sim:=pybullet``: the PyBullet world (``wm_pybullet``, a
second, independent world built from ``configs/cells/pybullet.yaml`` unless ``cell_file:=``
names another) stands in for the arm and the camera on the same device topics, and the nodes
run on its ``/clock`` (``wm up pybullet`` runs the same through the runner). The nodes come
from ``wm_bringup.stack.describe("real", ...)`` with these arguments, the same call
``python -m wm_bringup real NAME:=VALUE`` makes.
See launch/README.md.
"""


def generate_launch_description():
    from wm_bringup.launch_builder import build

    return build("real")
