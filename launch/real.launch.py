"""Real arm: perception + planner + safety against a ros2_control arm and a camera driver.

    ros2 launch wm_bringup real.launch.py [backend:=tensorrt] [params_file:=FILE] [use_rviz:=true]

No simulator (``sim:=false``): the safety node drives
``/scaled_joint_trajectory_controller/joint_trajectory``, perception reads
``/camera/color/image_raw``; suction goes out on ``/suction/command`` (std_msgs/Bool). The safety
node is always included. The node set comes from ``wm_bringup.stack.describe("real")``.
"""


def generate_launch_description():
    from wm_bringup.launch_builder import build

    return build("real")
