"""Build a ``launch_ros`` description from the stack description (used by launch/*.launch.py).

``launch`` and ``launch_ros`` are imported inside :func:`build` only: they exist on a full
ROS 2 install (Docker, Jetson), not in the pip-installed ROS 2 of the dev machines.

The launch arguments are the profile's :func:`wm_bringup.stack.arguments` (declared here with
their defaults, descriptions and choices). At launch time an ``OpaqueFunction`` reads their
values and calls :func:`wm_bringup.stack.describe` with them, exactly as the runner does with
``python -m wm_bringup PROFILE NAME:=VALUE``, and starts the nodes it returns: the launch file
and the runner share one code path for every choice (topics, joint names, cell file, shadow
mode) and its validation (a bad value stops the launch with describe's one-line error).

Beside the stack's nodes, on every launch:

- ``robot_state_publisher`` with the arm's URDF (visuals included) and ``use_sim_time`` as the
  stack's, except in the real profile, whose arm driver publishes its own description;
- a ``tf2_ros`` ``static_transform_publisher``: the cell's ``camera.T_world_cam``, from
  ``world`` to the camera's optical frame (``camera.frame_id``), and in the sim profile
  ``world`` -> ``base_link`` (the cell's base pose), so RViz and Foxglove draw the arm, the
  camera and the plan markers in one tree.

With ``sim:=gazebo`` (:func:`gazebo_actions`): the Gazebo files generated from the cell
(:func:`wm_core.gazebo.write_gazebo_files`), gz sim, ``ros_gz_sim create`` of the arm, the
``ros_gz_bridge``, the controller spawners and the suction relay (``wm_bringup.gz_suction``).
Each of these is built by a function of its own, importable without ``launch_ros`` (the
imports are inside), so a test can build them where ``launch_ros`` exists.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from wm_bringup.stack import (
    CRASH_LOOP,
    DESCRIBE_KEYWORDS,
    PACKAGE,
    PROFILES,
    RESPAWN_DELAY_S,
    Stack,
    arguments,
    dds_environment,
    describe,
)


def stack_from_launch_configurations(profile: str, values: dict[str, str]) -> Stack:
    """The stack the launch arguments ``values`` (name -> string) select."""
    names = {a.name for a in arguments(profile) if not a.launch_only}
    return describe(
        profile,
        sim=values["sim"],
        backend=values["backend"],
        params_file=values["params_file"] or None,
        arguments={k: v for k, v in values.items() if k in names - set(DESCRIBE_KEYWORDS)},
    )


WORLD_FRAME = "world"
GZ_MODEL_NAME = "wm_arm"
SPAWNER_TIMEOUT_S = 60
"""Seconds a controller spawner waits for gz_ros2_control's controller_manager."""


def quaternion_xyzw(rotation: np.ndarray) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a [3, 3] rotation (as tf2 takes it)."""
    from transforms3d.quaternions import mat2quat

    w, x, y, z = mat2quat(np.asarray(rotation, float))
    return float(x), float(y), float(z), float(w)


def static_transform_arguments(parent: str, child: str, pose: np.ndarray) -> list[str]:
    """``static_transform_publisher`` arguments (the Humble-and-newer flag form) for a [4, 4]
    pose of ``child`` in ``parent``."""
    t = np.asarray(pose, float)
    qx, qy, qz, qw = quaternion_xyzw(t[:3, :3])
    values = {"x": t[0, 3], "y": t[1, 3], "z": t[2, 3], "qx": qx, "qy": qy, "qz": qz, "qw": qw}
    args: list[str] = []
    for key, value in values.items():
        args += [f"--{key}", repr(float(value))]
    return [*args, "--frame-id", parent, "--child-frame-id", child]


def installed(package: str) -> bool:
    """Whether the ament index knows ``package`` (tf2_ros and robot_state_publisher are on a
    full ROS 2 install, not among the PyPI wheels)."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        get_package_prefix(package)
    except (PackageNotFoundError, OSError):  # OSError: no AMENT_PREFIX_PATH at all
        return False
    return True


def description_actions(stack: Stack, cell: Any, urdf: str, available: Any = None) -> list[Any]:
    """robot_state_publisher (not in the real profile: the arm's driver runs its own) and the
    static transforms of the camera and the arm's base (see the module docstring). They only
    show the robot in RViz/Foxglove, so where their package is not installed they are left out
    with a warning instead of stopping the launch."""
    from launch.actions import LogInfo
    from launch_ros.actions import Node

    available = available or installed
    out = _description_nodes(Node, stack, cell, urdf)  # [(package, Node)]
    missing = sorted({p for p, _ in out if not available(p)})
    nodes = [n for p, n in out if p not in missing]
    if not missing:
        return nodes
    note = LogInfo(
        msg=f"[WARN] {', '.join(missing)} not installed: no TF / robot_description from this "
        "launch (RViz and Foxglove will not show the arm); the stack itself is unaffected"
    )
    return [note, *nodes]


def _description_nodes(Node: Any, stack: Stack, cell: Any, urdf: str) -> list[tuple[str, Any]]:  # noqa: N803
    """(package, Node) of the camera's and the base's static transforms and of
    robot_state_publisher (the real profile: the camera's only)."""
    from wm_core.robot import load_arm

    def tf(name: str, child: str, pose: Any) -> tuple[str, Any]:
        return "tf2_ros", Node(
            package="tf2_ros",
            executable="static_transform_publisher",
            name=name,
            arguments=static_transform_arguments(WORLD_FRAME, child, pose),
            parameters=[{"use_sim_time": stack.sim}],
        )

    out = [tf("wm_camera_tf", cell.camera.frame_id, cell.camera.pose)]
    if stack.profile == "real":
        return out
    if stack.simulator != "gazebo":  # Gazebo's URDF has its own world link and joint
        out.append(tf("wm_base_tf", load_arm().base_link, cell.arm.T_world_base))
    rsp = Node(
        package="robot_state_publisher",
        executable="robot_state_publisher",
        name="robot_state_publisher",
        output="screen",
        parameters=[{"robot_description": urdf, "use_sim_time": stack.sim}],
    )
    return [*out, ("robot_state_publisher", rsp)]


def gazebo_directory() -> Path:
    """Where a launch writes the Gazebo files: ``$ROS_HOME/wm_gazebo/<pid>`` (``~/.ros``)."""
    home = Path(os.environ.get("ROS_HOME") or Path.home() / ".ros")
    return home / "wm_gazebo" / str(os.getpid())


def gazebo_files(stack: Stack, cell: Any, out_dir: Path | None = None) -> Any:
    """Generate the Gazebo files of the stack's cell, with the objects of ``wm_sim``'s episode
    ``seed`` and ``n_objects`` (its parameters file), as the MuJoCo world would place them, and
    the camera rendering ``wm_sim``'s ``image_size`` (square, K scaled) at ``control_hz``."""
    from wm_core.gazebo import write_gazebo_files
    from wm_core.sim.config import SceneConfig
    from wm_core.sim.scene import episode_world_objects

    params = stack.sim_parameters()
    scene = SceneConfig()
    seed = int(params.get("seed", 0))
    n_objects = int(params.get("n_objects", scene.n_objects))
    size = int(params.get("image_size", scene.image_size))
    rate = float(params.get("control_hz", scene.control_hz))
    objects = episode_world_objects(seed, SceneConfig(n_objects=n_objects))
    return write_gazebo_files(cell, out_dir or gazebo_directory(), objects, (size, size), rate)


def gazebo_actions(stack: Stack, files: Any, gz_args: str) -> list[Any]:
    """gz sim on the generated world, the arm spawned from its URDF, the bridge, the controller
    spawners and the suction relay (the pattern of Universal_Robots_ROS2_GZ_Simulation's
    ``ur_sim_control.launch.py``)."""
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from launch.substitutions import PathJoinSubstitution
    from launch_ros.actions import Node
    from launch_ros.substitutions import FindPackageShare

    from wm_core.gazebo import ARM_CONTROLLER, JOINT_STATE_BROADCASTER
    from wm_core.gazebo.world import WORLD_NAME

    sim_time = {"use_sim_time": True}
    gz_sim = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            PathJoinSubstitution([FindPackageShare("ros_gz_sim"), "launch", "gz_sim.launch.py"])
        ),
        launch_arguments={
            "gz_args": f"{gz_args} {files.world}",
            "on_exit_shutdown": "true",
        }.items(),
    )
    spawn = Node(
        package="ros_gz_sim",
        executable="create",
        name="wm_spawn_arm",
        output="screen",
        arguments=["-world", WORLD_NAME, "-name", GZ_MODEL_NAME, "-file", str(files.urdf)],
        parameters=[sim_time],
    )
    bridge = Node(
        package="ros_gz_bridge",
        executable="parameter_bridge",
        name="wm_gz_bridge",
        output="screen",
        parameters=[{"config_file": str(files.bridge), **sim_time}],
    )
    spawners = [
        Node(
            package="controller_manager",
            executable="spawner",
            name=f"spawner_{controller}",
            output="screen",
            arguments=[
                controller,
                "--controller-manager",
                "/controller_manager",
                "--controller-manager-timeout",
                str(SPAWNER_TIMEOUT_S),
            ],
            parameters=[sim_time],
        )
        for controller in (JOINT_STATE_BROADCASTER, ARM_CONTROLLER)
    ]
    suction = [
        Node(
            package=PACKAGE,
            executable="gz_suction",
            name="wm_gz_suction",
            output="screen",
            parameters=[
                {"objects": list(files.objects), "cell_file": stack.cell_file(), **sim_time}
            ],
        )
    ]
    return [gz_sim, spawn, bridge, *spawners, *(suction if files.objects else [])]


def refuse_unknown(profile: str, configured: Iterable[str]) -> None:
    """ValueError for a launch configuration that looks meant for this launch file but is not
    one of its arguments: another profile's argument (``shadow:=true`` to sim.launch.py) or a
    near-miss of one (``shadw:=true``). ``ros2 launch`` passes undeclared arguments through
    silently, so a misspelt ``shadow`` would otherwise start a live arm. Other names (a parent
    launch file's own arguments, ``launch-prefix``) are left alone."""
    declared = {a.name for a in arguments(profile)}
    known = {a.name for p in PROFILES for a in arguments(p)}
    for name in sorted(set(configured) - declared):
        near = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
        if name in known or near:
            hint = f" (did you mean {near[0]!r}?)" if near and near[0] != name else ""
            raise ValueError(
                f"{profile}.launch.py has no argument {name!r}{hint}; it takes {sorted(declared)}"
            )


def build(profile: str) -> Any:
    """The LaunchDescription of ``profile`` ("sim" or "real")."""
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.substitutions import PathJoinSubstitution
    from launch_ros.actions import Node
    from launch_ros.substitutions import FindPackageShare

    from launch import LaunchDescription

    declared = arguments(profile)
    actions: list[Any] = [
        DeclareLaunchArgument(
            a.name,
            default_value=a.default,
            description=a.description,
            **({"choices": list(a.choices)} if a.choices else {}),
        )
        for a in declared
    ]

    def nodes(context: Any) -> list[Any]:
        refuse_unknown(profile, context.launch_configurations)
        from wm_core.cell import cell_or_default
        from wm_core.robot.urdf import DEFAULT_URDF

        values = {a.name: context.launch_configurations[a.name] for a in declared}
        stack = stack_from_launch_configurations(profile, values)
        cell = cell_or_default(stack.cell_file())
        extra: list[Any] = []
        if stack.simulator == "gazebo":
            files = gazebo_files(stack, cell)
            extra = gazebo_actions(stack, files, values["gz_args"])
            urdf = files.urdf.read_text()
        else:
            urdf = DEFAULT_URDF.read_text()
        out: list[Any] = [
            Node(
                package=spec.package,
                executable=spec.executable,
                name=spec.name,
                output="screen",
                emulate_tty=True,
                parameters=[str(stack.params_file), dict(spec.parameters)],
                remappings=list(spec.remappings),
                ros_arguments=spec.ros_arguments(),  # the SROS2 enclave with enclaves:=true
                # a node whose process dies comes back (the runner does the same); launch
                # cannot tell a refusal to start (EXIT_REFUSED) from a crash, so the retries are
                # bounded (Iron and newer): a bad parameter is not a crash loop
                respawn=True,
                respawn_delay=RESPAWN_DELAY_S,
                respawn_max_retries=CRASH_LOOP[0],
                additional_env=dds_environment(dict(os.environ)),
            )
            for spec in stack.running()
        ]
        out += description_actions(stack, cell, urdf) + extra
        if values["use_rviz"].strip().lower() == "true":
            rviz_config = PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "wm.rviz"])
            out.append(
                Node(
                    package="rviz2",
                    executable="rviz2",
                    name="rviz2",
                    arguments=["-d", rviz_config],
                    parameters=[{"use_sim_time": stack.sim}],
                )
            )
        return out

    actions.append(OpaqueFunction(function=nodes))
    return LaunchDescription(actions)
