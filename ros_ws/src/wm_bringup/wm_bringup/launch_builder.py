"""Build a ``launch_ros`` description from the stack description (used by launch/*.launch.py).

``launch`` and ``launch_ros`` are imported inside :func:`build` only: they exist on a full
ROS 2 install (Docker, Jetson), not in the pip-installed ROS 2 of the dev machines.

Launch arguments:

- ``sim`` (true in sim.launch.py, false in real.launch.py): start the simulator and put the
  other nodes on ``/clock`` time (``use_sim_time``);
- ``backend``: the perception backend (torch | onnxruntime | tensorrt);
- ``params_file``: the parameters YAML (default: wm_bringup's config/stack.yaml);
- ``use_rviz``: also start RViz with config/wm.rviz.
"""

from __future__ import annotations

from typing import Any

from wm_bringup.stack import (
    BACKENDS,
    CRASH_LOOP,
    PACKAGE,
    PARAMS_RELATIVE,
    RESPAWN_DELAY_S,
    describe,
)

LAUNCH_ARGUMENT_PARAMS = {"use_sim_time": "sim", "backend": "backend"}
"""Node parameters whose value comes from a launch argument (parameter -> argument)."""


def build(profile: str) -> Any:
    """The LaunchDescription of ``profile`` ("sim" or "real")."""
    from launch.actions import DeclareLaunchArgument
    from launch.conditions import IfCondition
    from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
    from launch_ros.actions import Node
    from launch_ros.substitutions import FindPackageShare

    from launch import LaunchDescription

    share = FindPackageShare(PACKAGE)
    stack = describe(profile)
    actions: list[Any] = [
        DeclareLaunchArgument(
            "sim",
            default_value="true" if stack.sim else "false",
            description="Run the MuJoCo simulator and use its /clock.",
        ),
        DeclareLaunchArgument(
            "backend",
            default_value="torch",
            choices=list(BACKENDS),
            description="Perception encoder backend.",
        ),
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([share, *PARAMS_RELATIVE.split("/")]),
            description="Parameters YAML of the stack.",
        ),
        DeclareLaunchArgument(
            "use_rviz", default_value="false", description="Start RViz (config/wm.rviz)."
        ),
    ]
    sim = LaunchConfiguration("sim")
    for spec in stack.nodes:
        overrides: dict[str, Any] = {}
        for key, value in spec.parameters:
            arg = LAUNCH_ARGUMENT_PARAMS.get(key)
            from_arg = arg is not None and not (spec.sim_only and key == "use_sim_time")
            overrides[key] = LaunchConfiguration(arg) if from_arg else value
        actions.append(
            Node(
                package=spec.package,
                executable=spec.executable,
                name=spec.name,
                output="screen",
                emulate_tty=True,
                parameters=[LaunchConfiguration("params_file"), overrides],
                remappings=list(spec.remappings),
                condition=IfCondition(sim) if spec.sim_only else None,
                # a node whose process dies comes back (the runner does the same); launch
                # cannot tell a refusal to start (EXIT_REFUSED) from a crash, so the retries are
                # bounded (Iron and newer): a bad parameter is not a crash loop
                respawn=True,
                respawn_delay=RESPAWN_DELAY_S,
                respawn_max_retries=CRASH_LOOP[0],
            )
        )
    actions.append(
        Node(
            package="rviz2",
            executable="rviz2",
            name="rviz2",
            arguments=["-d", PathJoinSubstitution([share, "config", "wm.rviz"])],
            parameters=[{"use_sim_time": sim}],
            condition=IfCondition(LaunchConfiguration("use_rviz")),
        )
    )
    return LaunchDescription(actions)
