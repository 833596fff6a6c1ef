"""Simulation: the MuJoCo world + perception + planner + safety, on sim time.

    ros2 launch wm_bringup sim.launch.py [cell_file:=FILE] [backend:=torch] [params_file:=FILE]
        [use_rviz:=true]

The node set comes from ``wm_bringup.stack.describe("sim", ...)``, the same description the
runner (``python -m wm_bringup sim``) reads. See launch/README.md.
"""


def generate_launch_description():
    from wm_bringup.launch_builder import build

    return build("sim")
