"""Build a ``launch_ros`` description from the stack description (used by launch/*.launch.py).

``launch`` and ``launch_ros`` are imported inside :func:`build` only: they exist on a full
ROS 2 install (Docker, Jetson), not in the pip-installed ROS 2 of the dev machines.

The launch arguments are the profile's :func:`wm_bringup.stack.arguments` (declared here with
their defaults, descriptions and choices). At launch time an ``OpaqueFunction`` reads their
values and calls :func:`wm_bringup.stack.describe` with them, exactly as the runner does with
``python -m wm_bringup PROFILE NAME:=VALUE``, and starts the nodes it returns: the launch file
and the runner share one code path for every choice (topics, joint names, cell file, shadow
mode) and its validation (a bad value stops the launch with describe's one-line error).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from wm_bringup.stack import (
    CRASH_LOOP,
    DESCRIBE_KEYWORDS,
    PACKAGE,
    PROFILES,
    RESPAWN_DELAY_S,
    Stack,
    arguments,
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
        values = {a.name: context.launch_configurations[a.name] for a in declared}
        stack = stack_from_launch_configurations(profile, values)
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
            )
            for spec in stack.running()
        ]
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
