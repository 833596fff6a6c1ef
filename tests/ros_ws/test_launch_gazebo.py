"""The ``sim:=gazebo`` launch actions built with the real ``launch`` / ``launch_ros`` (a full
ROS 2 install: the Docker image). Here (ROS 2 from pip) ``launch_ros`` is not importable and
the test skips; ``test_stack_description.py`` checks the same branch against recording
stand-ins."""

from __future__ import annotations

import pytest

launch_ros = pytest.importorskip(
    "launch_ros", reason="launch_ros is not installed (not on PyPI; a full ROS 2 install has it)"
)


def test_gazebo_actions_with_the_real_launch_system(tmp_path):
    from launch.actions import IncludeLaunchDescription
    from launch_ros.actions import Node
    from wm_bringup.launch_builder import description_actions, gazebo_actions, gazebo_files
    from wm_bringup.stack import describe

    from wm_core.cell import sim_cell

    stack = describe("sim", sim="gazebo")
    files = gazebo_files(stack, sim_cell(), tmp_path)
    actions = gazebo_actions(stack, files, "-r -s --headless-rendering")
    assert sum(isinstance(a, IncludeLaunchDescription) for a in actions) == 1
    assert sum(isinstance(a, Node) for a in actions) == 5  # create, bridge, 2 spawners, relay
    urdf = files.urdf.read_text()
    described = description_actions(stack, sim_cell(), urdf, available=lambda p: True)
    assert len(described) == 2 and all(isinstance(a, Node) for a in described)
    # where tf2_ros / robot_state_publisher are missing (the PyPI ROS here): left out, said so
    bare = description_actions(stack, sim_cell(), urdf, available=lambda p: False)
    assert len(bare) == 1 and "robot_state_publisher, tf2_ros not installed" in str(bare[0].msg)


def test_sim_launch_file_with_sim_gazebo_under_the_real_launch_context(tmp_path, monkeypatch):
    """sim.launch.py's declared arguments and its OpaqueFunction, evaluated by launch itself
    with ``sim:=gazebo`` (nothing is executed: no Gazebo is started)."""
    import runpy

    import ros_harness
    from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
    from launch.utilities import perform_substitutions
    from launch_ros.actions import Node

    from launch import LaunchContext

    monkeypatch.setenv("ROS_HOME", str(tmp_path))
    ld = runpy.run_path(str(ros_harness.ROOT / "launch" / "sim.launch.py"))[
        "generate_launch_description"
    ]()
    context = LaunchContext()
    context.launch_configurations["sim"] = "gazebo"
    for action in ld.entities:
        if isinstance(action, DeclareLaunchArgument):
            action.visit(context)  # sets the defaults of the arguments not given
    assert context.launch_configurations["sim"] == "gazebo"
    (opaque,) = [a for a in ld.entities if isinstance(a, OpaqueFunction)]
    actions = opaque.execute(context)
    nodes = [a for a in actions if isinstance(a, Node)]
    executables = {
        e if isinstance(e, str) else perform_substitutions(context, e)
        for e in (n.node_executable for n in nodes)
    }
    assert {
        "perception_node",
        "planner_node",
        "safety_node",
        "robot_state_publisher",
        "static_transform_publisher",
        "create",
        "parameter_bridge",
        "spawner",
        "gz_suction",
    } == executables  # no sim_node: Gazebo replaces wm_sim
    assert sum(isinstance(a, IncludeLaunchDescription) for a in actions) == 1
    assert list((tmp_path / "wm_gazebo").glob("*/world.sdf"))
