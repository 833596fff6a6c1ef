"""The stack description: which nodes run, with which parameters file and remappings.

This one data structure is read by the launch files (``launch/*.launch.py`` through
:mod:`wm_bringup.launch_builder`) *and* by the runner (``python -m wm_bringup``), so the two
cannot drift; ``tests/ros_ws/test_stack_description.py`` checks that they do not.

Profiles:

- ``sim``: the MuJoCo world (``wm_sim``) + perception + planner + safety, all on sim time.
- ``real``: no simulator; the safety node drives a ros2_control joint_trajectory_controller
  (``/scaled_joint_trajectory_controller/joint_trajectory`` by default, the UR driver's) and
  the suction command goes out as ``std_msgs/Bool`` on ``/suction/command``; the camera is a
  driver publishing ``/camera/color/image_raw`` (RealSense naming).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

PACKAGE = "wm_bringup"
PARAMS_RELATIVE = "config/stack.yaml"
"""The parameters file, relative to the wm_bringup share directory (and to the package source)."""
PROFILES = ("sim", "real")
BACKENDS = ("torch", "onnxruntime", "tensorrt")

ARM_COMMAND_TOPIC = "/arm_controller/joint_trajectory"
REAL_ARM_COMMAND_TOPIC = "/scaled_joint_trajectory_controller/joint_trajectory"
REAL_IMAGE_TOPIC = "/camera/color/image_raw"
REAL_CAMERA_INFO_TOPIC = "/camera/color/camera_info"

Scalar = bool | int | float | str

EXIT_REFUSED = 3
"""Exit status of a node process that refuses to start (bad parameter, missing model or
package): never respawned, since it would only refuse again."""
RESPAWN_DELAY_S = 2.0
"""A node whose process dies is started again after this long (launch files and runner)."""
CRASH_LOOP = (5, 60.0)
"""More than 5 respawns of one node within 60 s is a crash loop: the runner stops the stack."""


@dataclass(frozen=True)
class NodeSpec:
    """One node of the stack."""

    package: str
    executable: str
    """console_scripts entry point (what launch_ros runs)."""
    module: str
    """Python module with ``main()`` and ``NODE_CLASS`` (what the runner runs or imports)."""
    name: str
    remappings: tuple[tuple[str, str], ...] = ()
    parameters: tuple[tuple[str, Scalar], ...] = ()
    """Overrides applied after the parameters file (profile and command-line choices)."""
    sim_only: bool = False
    """Started only when ``sim`` is true (the simulator)."""

    def ros_args(self, params_file: Path | str) -> list[str]:
        """The ``--ros-args`` a process (or an in-process node) of this spec gets.

        Overrides are node-qualified (``-p name:key:=value``): rcl gives a plain ``-p`` the
        ``/**`` scope, which a node's own section in the parameters file would override."""
        args = ["--ros-args", "-r", f"__node:={self.name}", "--params-file", str(params_file)]
        for key, value in self.parameters:
            args += ["-p", f"{self.name}:{key}:={_yaml_scalar(value)}"]
        for src, dst in self.remappings:
            args += ["-r", f"{src}:={dst}"]
        return args


@dataclass(frozen=True)
class Stack:
    profile: str
    sim: bool
    params_file: Path
    nodes: tuple[NodeSpec, ...] = field(default=())

    def node(self, name: str) -> NodeSpec:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node {name!r} in the {self.profile} stack")

    def running(self) -> tuple[NodeSpec, ...]:
        """The nodes that run (the simulator only when ``sim``)."""
        return tuple(n for n in self.nodes if self.sim or not n.sim_only)


def _yaml_scalar(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def default_params_file() -> Path:
    """``config/stack.yaml``: beside the package sources, else in the installed share dir."""
    here = Path(__file__).resolve().parents[1] / PARAMS_RELATIVE
    if here.is_file():
        return here
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory(PACKAGE)) / PARAMS_RELATIVE


SIM = NodeSpec("wm_sim", "sim_node", "wm_sim.sim_node", "wm_sim", sim_only=True)
PERCEPTION = NodeSpec(
    "wm_perception", "perception_node", "wm_perception.perception_node", "wm_perception"
)
PLANNER = NodeSpec("wm_planner", "planner_node", "wm_planner.planner_node", "wm_planner")
SAFETY = NodeSpec("wm_safety", "safety_node", "wm_safety.safety_node", "wm_safety")


def describe(
    profile: str = "sim",
    *,
    sim: bool | None = None,
    backend: str = "torch",
    params_file: Path | str | None = None,
    overrides: dict[str, dict[str, Scalar]] | None = None,
) -> Stack:
    """The node set of ``profile``. ``sim`` defaults to ``profile == "sim"``; ``overrides``
    maps a node name to extra parameters (e.g. the runner's ``--seed``)."""
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} must be one of {PROFILES}")
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} must be one of {BACKENDS}")
    sim = profile == "sim" if sim is None else bool(sim)
    sim_time = (("use_sim_time", sim),)
    nodes = [
        replace(SIM, parameters=(("use_sim_time", False),)),
        replace(PERCEPTION, parameters=(*sim_time, ("backend", backend))),
        replace(PLANNER, parameters=sim_time),
        replace(SAFETY, parameters=sim_time),
    ]
    if profile == "real":
        arm = ((ARM_COMMAND_TOPIC, REAL_ARM_COMMAND_TOPIC),)
        cam = (
            ("/camera/image_raw", REAL_IMAGE_TOPIC),
            ("/camera/camera_info", REAL_CAMERA_INFO_TOPIC),
        )
        nodes = [
            replace(nodes[0], remappings=arm + cam),  # a simulator standing in for the real arm
            replace(nodes[1], remappings=cam),
            replace(nodes[2], remappings=arm),  # the planner's basis: what the arm is sent
            replace(
                nodes[3],
                remappings=arm,
                parameters=(*nodes[3].parameters, ("suction_in_trajectory", False)),
            ),
        ]
    for name, extra in (overrides or {}).items():
        i = next((k for k, n in enumerate(nodes) if n.name == name), None)
        if i is None:
            raise KeyError(f"overrides for unknown node {name!r}")
        merged = dict(nodes[i].parameters) | dict(extra)
        nodes[i] = replace(nodes[i], parameters=tuple(merged.items()))
    pfile = Path(params_file) if params_file else default_params_file()
    return Stack(profile, sim, pfile, tuple(nodes))
