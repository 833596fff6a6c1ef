"""The stack description: which nodes run, with which parameters file and remappings.

This one data structure is read by the launch files (``launch/*.launch.py`` through
:mod:`wm_bringup.launch_builder`) *and* by the runner (``python -m wm_bringup``), so the two
cannot drift; ``tests/ros_ws/test_stack_description.py`` checks that they do not.

Profiles:

- ``sim``: the MuJoCo world (``wm_sim``) + perception + planner + safety, all on sim time.
  With ``sim:=gazebo`` (``ros2 launch`` on a full ROS 2 install only) Gazebo Harmonic replaces
  ``wm_sim``: the launch file starts gz sim with a world generated from the cell file, the arm
  under ros2_control, the ``ros_gz_bridge`` and the suction relay (:mod:`wm_bringup.launch_builder`,
  :mod:`wm_core.gazebo`); the perception, planner and safety nodes are the same, and the safety
  node sends the suction on ``/suction/command`` (a joint_trajectory_controller rejects the
  ``suction_cup`` pseudo-joint).
- ``real``: no simulator; the safety node drives a ros2_control joint_trajectory_controller
  (``/scaled_joint_trajectory_controller/joint_trajectory`` by default, the UR driver's) and
  the suction command goes out as ``std_msgs/Bool`` on ``/suction/command``; the camera is a
  driver publishing ``/camera/color/image_raw`` and ``/camera/color/camera_info`` (RealSense
  naming). Its :func:`arguments` choose the cell file, the arm's joint names, every topic and
  shadow mode. The safety node is part of every ``real`` stack: no argument removes it, and the
  arm topic cannot be pointed at one of the stack's own topics. With ``sim:=pybullet`` a second,
  independent world (``wm_pybullet``: PyBullet physics and renderer, its own cell
  ``configs/cells/pybullet.yaml`` unless ``cell_file:=`` names another) stands in for the arm
  and the camera on the profile's device topics (``wm up pybullet``).

**Arguments.** Each profile has launch arguments (:func:`arguments`): ``ros2 launch wm_bringup
real.launch.py NAME:=VALUE`` and ``python -m wm_bringup real NAME:=VALUE`` take the same names
and values, and both hand them to :func:`describe`; the launch file evaluates them at launch
time and starts exactly the nodes :func:`describe` returns.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

PACKAGE = "wm_bringup"
PARAMS_RELATIVE = "config/stack.yaml"
"""The parameters file, relative to the wm_bringup share directory (and to the package source)."""
PROFILES = ("sim", "real")
SIMULATORS = ("mujoco", "gazebo", "pybullet")
"""What ``sim:=`` can start: ``true`` is the MuJoCo world (``wm_sim``), ``gazebo`` Gazebo (sim
profile), ``pybullet`` the PyBullet world (``wm_pybullet``; real profile)."""
SIM_NODES = {"mujoco": "wm_sim", "pybullet": "wm_pybullet"}
"""The node each simulator that runs as one of the stack's nodes starts."""
PYBULLET_CELL_RELATIVE = "configs/cells/pybullet.yaml"
"""The PyBullet world's own cell, relative to the repository (``wm_core.cell.PYBULLET_CELL_FILE``);
``sim:=pybullet`` gives it to every node that reads a cell unless ``cell_file:=`` is set."""
GAZEBO_NEEDS_ROS2 = (
    "sim:=gazebo needs Gazebo Harmonic and a full ROS 2 install (the Docker image, README "
    "'Docker'): ros2 launch wm_bringup sim.launch.py sim:=gazebo; the runner starts sim:=true "
    "(MuJoCo) only"
)
BACKENDS = ("torch", "onnxruntime", "tensorrt", "auto")
"""wm_core.deploy.config.CHOICES (restated so that launch files need not import wm_core; a
test checks they agree)."""

ARM_COMMAND_TOPIC = "/arm_controller/joint_trajectory"
"""The arm command topic inside the nodes (the safety node's output, the planner's basis)."""
IMAGE_TOPIC = "/camera/image_raw"
CAMERA_INFO_TOPIC = "/camera/camera_info"
SUCTION_TOPIC = "/suction/command"
SHADOW_TOPIC = "/wm/shadow/joint_trajectory"
"""Where the safety node publishes, in shadow mode, what it would have sent to the arm."""
TELEOP_TOPIC = "/wm/teleop/plan_cmd"
"""With ``teleop:=true``: the PyBullet world's scripted teleoperator's commands (to the safety
node, in place of the planner's; ``wm_pybullet.teleop``)."""
REAL_ARM_COMMAND_TOPIC = "/scaled_joint_trajectory_controller/joint_trajectory"
REAL_IMAGE_TOPIC = "/camera/color/image_raw"
REAL_CAMERA_INFO_TOPIC = "/camera/color/camera_info"
STACK_OWN_TOPICS = (
    "/wm/latent",
    "/wm/plan_cmd",
    "/wm/plan_markers",
    "/wm/detections",
    "/wm/surprise",
    "/wm/estop",
    "/wm/safety/command_source",
    "/wm/safety/verdict",
    SHADOW_TOPIC,
    TELEOP_TOPIC,
    "/joint_states",
    "/diagnostics",
    "/clock",
)
"""Topics the stack itself publishes or reads: none of them may be chosen as a device topic."""
CELL_NODES = ("wm_sim", "wm_pybullet", "wm_planner", "wm_safety")
"""The nodes that read the ``cell_file`` parameter."""
JOINT_NAME_NODES = ("wm_planner", "wm_safety")
"""The nodes that take the arm's joint names from the ``joint_names`` parameter."""

PROFILE_SET = frozenset(
    {
        "shadow",
        "arm_command_topic",
        "suction_in_trajectory",
        "joint_names",
        "use_camera_info_intrinsics",
    }
)
"""Parameters the real profile sets from its arguments; ``overrides`` may not change them
(a shadow-mode safety node must not be turned live behind the planner's back)."""

Scalar = bool | int | float | str | list[str]

ENCLAVE_ROOT = "/wm"
"""With ``enclaves:=true`` each node runs in the SROS2 enclave ``/wm/<node name>``
(``scripts/sros2_setup.sh`` makes them; README, "DDS security")."""


def enclave_of(node: str) -> str:
    return f"{ENCLAVE_ROOT}/{node}"


@dataclass(frozen=True)
class Argument:
    """One launch argument (a string on the command line, as ``ros2 launch`` passes it)."""

    name: str
    default: str
    description: str
    choices: tuple[str, ...] = ()
    launch_only: bool = False
    """Only ``ros2 launch`` has it (RViz); the runner refuses it."""


BACKEND_ENV = "WM_BACKEND"
"""Environment variable that sets the ``backend`` launch argument's default (the Jetson image
sets ``tensorrt``); unset: empty, i.e. the parameters file's ``backend`` (stack.yaml: torch)."""
BACKEND_CHOICES = ("", *BACKENDS)
"""The ``backend`` argument's values: empty keeps the parameters file's choice."""


def default_backend() -> str:
    """The ``backend`` argument's default: ``$WM_BACKEND``, else empty (the parameters file)."""
    value = os.environ.get(BACKEND_ENV, "").strip()
    if value not in BACKEND_CHOICES:
        raise ValueError(f"{BACKEND_ENV}={value!r} must be one of {BACKENDS}")
    return value


COMMON_ARGUMENTS = (
    Argument(
        "backend",
        "",
        "World-model inference backend of perception and planner: torch, onnxruntime, "
        "tensorrt, or auto (the first of those three, fastest first, that runs here). Empty: "
        f"${BACKEND_ENV}, else the parameters file's (stack.yaml: torch).",
        choices=BACKEND_CHOICES,
    ),
    Argument(
        "params_file", "", "Parameters YAML of the stack (empty: wm_bringup's config/stack.yaml)."
    ),
    Argument(
        "cell_file",
        "",
        "Work-cell file for every node that reads one (wm_sim, wm_planner, wm_safety); empty: "
        "the parameters file's cell_file (by default configs/cells/sim.yaml).",
    ),
    Argument(
        "enclaves",
        "false",
        f"Run each node in its SROS2 enclave {ENCLAVE_ROOT}/<node> (--enclave; one process per "
        "node). Security itself is switched on by ROS_SECURITY_ENABLE, ROS_SECURITY_STRATEGY "
        "and ROS_SECURITY_KEYSTORE (scripts/sros2_setup.sh makes the keystore).",
        ("true", "false"),
    ),
    Argument(
        "use_rviz", "false", "Start RViz (config/wm.rviz).", ("true", "false"), launch_only=True
    ),
)
REAL_ARGUMENTS = (
    Argument(
        "joint_names",
        "",
        "The arm's six joint names, in the URDF's joint order (shoulder pan ... wrist 3), as "
        "its driver names them in /joint_states and expects them in trajectories: "
        "[a, b, c, d, e, f] or a,b,c,d,e,f. Empty: the URDF's names.",
    ),
    Argument("arm_topic", REAL_ARM_COMMAND_TOPIC, "JointTrajectory topic of the arm's controller."),
    Argument("image_topic", REAL_IMAGE_TOPIC, "Camera image topic (rgb8 or bgr8)."),
    Argument("camera_info_topic", REAL_CAMERA_INFO_TOPIC, "Camera info topic."),
    Argument("suction_topic", SUCTION_TOPIC, "Suction command topic (std_msgs/Bool)."),
    Argument(
        "shadow",
        "false",
        "Shadow mode: everything runs and the safety node judges every command, but publishes "
        f"it on {SHADOW_TOPIC} and nothing on the arm or suction topics.",
        ("true", "false"),
    ),
    Argument(
        "teleop",
        "false",
        "With sim:=pybullet: scripted teleoperation for recordings (issue 15's loop). The world "
        f"node drives the arm as a person would, on {TELEOP_TOPIC}, through the safety node; "
        "perception and the planner do not run.",
        ("true", "false"),
    ),
    Argument(
        "use_camera_info_intrinsics",
        "false",
        "Use the intrinsics published on camera_info (not the cell file's) for the planner's "
        "object readout.",
        ("true", "false"),
    ),
)


SIM_ARGUMENTS = (
    Argument(
        "gz_args",
        "-r -s --headless-rendering",
        "With sim:=gazebo: gz sim's options before the world file (-r runs at once; -s "
        "--headless-rendering: server only, rendering the camera without a display; drop -s "
        "for the Gazebo GUI).",
        launch_only=True,
    ),
)


def arguments(profile: str) -> tuple[Argument, ...]:
    """The launch arguments of ``profile`` (``sim`` first: it defaults to the profile)."""
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} must be one of {PROFILES}")
    if profile == "sim":
        sim = Argument(
            "sim",
            "true",
            "true: run the MuJoCo simulator (wm_sim) and use its /clock; gazebo: Gazebo Harmonic "
            "with a world generated from the cell file (ros2 launch on a full ROS 2 install "
            "only); false: no simulator.",
            ("true", "false", "gazebo"),
        )
        return (sim, *_common_arguments(), *SIM_ARGUMENTS)
    sim = Argument(
        "sim",
        "false",
        "true: run the MuJoCo simulator and use its /clock; pybullet: the PyBullet world "
        "(wm_pybullet, a second, independent world on the profile's device topics) and its "
        "/clock; false: no simulator.",
        ("true", "false", "pybullet"),
    )
    return (sim, *_common_arguments(), *REAL_ARGUMENTS)


def _common_arguments() -> tuple[Argument, ...]:
    backend = replace(COMMON_ARGUMENTS[0], default=default_backend())
    return (backend, *COMMON_ARGUMENTS[1:])


def parse_assignments(tokens: Iterable[str]) -> dict[str, str]:
    """``["name:=value", ...]`` (the ``ros2 launch`` syntax) -> ``{name: value}``."""
    out = {}
    for token in tokens:
        name, sep, value = token.partition(":=")
        if not sep or not name:
            raise ValueError(f"argument {token!r} must look like NAME:=VALUE")
        out[name] = value
    return out


DESCRIBE_KEYWORDS = ("sim", "backend", "params_file")
"""Launch arguments that are :func:`describe`'s keywords; the others go in its ``arguments``."""


def runner_arguments(profile: str, tokens: Iterable[str]) -> tuple[dict[str, str], dict[str, str]]:
    """A runner's ``NAME:=VALUE`` tokens -> (:func:`describe` keywords among them, the other
    arguments). ValueError for a malformed token, an unknown or a launch-only argument."""
    given = parse_assignments(tokens)
    declared = {a.name: a for a in arguments(profile)}
    for name in given:
        if name not in declared:
            raise ValueError(f"the {profile} profile has no argument {name!r}: {sorted(declared)}")
        if declared[name].launch_only:
            raise ValueError(f"{name} is a ros2 launch argument only")
    keywords = {k: given.pop(k) for k in DESCRIBE_KEYWORDS if k in given}
    return keywords, given


EXIT_REFUSED = 3
"""Exit status of a node process that refuses to start (bad parameter, missing model or
package): never respawned, since it would only refuse again."""
RESPAWN_DELAY_S = 2.0
"""A node whose process dies is started again after this long (launch files and runner)."""
CRASH_LOOP = (5, 60.0)
"""More than 5 respawns of one node within 60 s is a crash loop: the runner stops the stack."""

DDS_ENV = {"FASTDDS_BUILTIN_TRANSPORTS": "UDPv4"}
"""Environment of the stack's processes (launch files and runner), where the user has not set
it. Fast DDS's shared-memory transport, on by default for processes on one host, can stop
delivering a writer's large samples (camera images: 49 kB here) to every reader, the
respawned one included, once one reader process was SIGKILLed (eProsima/Fast-DDS#5469, open;
seen here as a respawned perception that never got a frame again under ``wm chaos``,
README "Fault injection"). Loopback UDP has no shared state for a dead process to wedge. Set
``FASTDDS_BUILTIN_TRANSPORTS=DEFAULT`` to have shared memory back. The runner's in-process mode
is one process: nothing of it dies alone, and its environment is left as it is."""


def dds_environment(env: dict[str, str]) -> dict[str, str]:
    """The entries of :data:`DDS_ENV` that ``env`` does not set already."""
    return {k: v for k, v in DDS_ENV.items() if k not in env}


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
    enclave: str = ""
    """SROS2 enclave (``--enclave``); empty: none (the process's default)."""

    def ros_arguments(self) -> list[str]:
        """Process-wide ROS arguments (launch_ros ``ros_arguments``): the enclave."""
        return ["--enclave", self.enclave] if self.enclave else []

    def ros_args(self, params_file: Path | str) -> list[str]:
        """The ``--ros-args`` a process (or an in-process node) of this spec gets.

        Overrides are node-qualified (``-p name:key:=value``): rcl gives a plain ``-p`` the
        ``/**`` scope, which a node's own section in the parameters file would override."""
        args = ["--ros-args", *self.ros_arguments(), "-r", f"__node:={self.name}"]
        args += ["--params-file", str(params_file)]
        for key, value in self.parameters:
            args += ["-p", f"{self.name}:{key}:={_yaml_scalar(value)}"]
        for src, dst in self.remappings:
            args += ["-r", f"{src}:={dst}"]
        return args


@dataclass(frozen=True)
class Stack:
    profile: str
    sim: bool
    """A simulator runs and the nodes use its /clock (``use_sim_time``)."""
    params_file: Path
    nodes: tuple[NodeSpec, ...] = field(default=())
    shadow: bool = False
    """Shadow mode (real profile): the safety node publishes on SHADOW_TOPIC only."""
    simulator: str = ""
    """Which simulator (:data:`SIMULATORS`) when ``sim``: ``mujoco`` runs ``wm_sim``,
    ``gazebo`` is started by the launch file around the same brain nodes; empty: none."""

    def node(self, name: str) -> NodeSpec:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node {name!r} in the {self.profile} stack")

    def running(self) -> tuple[NodeSpec, ...]:
        """The nodes that run (``wm_sim`` only with the MuJoCo simulator, ``wm_pybullet`` only
        with PyBullet)."""
        sim_node = SIM_NODES.get(self.simulator)
        return tuple(n for n in self.nodes if not n.sim_only or n.name == sim_node)

    def cell_file(self) -> str:
        """The cell file the nodes read: the ``cell_file`` launch argument, else the parameters
        file's (``/**`` or a node's section), else empty (``configs/cells/sim.yaml``)."""
        for spec in self.nodes:
            if spec.name in CELL_NODES and dict(spec.parameters).get("cell_file"):
                return str(dict(spec.parameters)["cell_file"])
        sections = _params_sections(self.params_file)
        for name in ("/**", *CELL_NODES):
            value = sections.get(name, {}).get("cell_file")
            if value:
                return str(value)
        return ""

    def sim_parameters(self) -> dict[str, Any]:
        """``wm_sim``'s parameters (the file's ``/**`` and ``wm_sim`` sections, then overrides):
        the Gazebo world takes its episode ``seed``, ``n_objects``, ``image_size`` and
        ``control_hz`` from them, so both simulators start from the same table and camera."""
        sections = _params_sections(self.params_file)
        values = dict(sections.get("/**", {})) | dict(sections.get("wm_sim", {}))
        for spec in self.nodes:
            if spec.name == "wm_sim":
                values |= dict(spec.parameters)
        return values


def _params_sections(path: Path) -> dict[str, dict[str, Any]]:
    """``{node or "/**": ros__parameters}`` of a parameters file; {} when it is missing."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except OSError:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"params_file {path}: expected a mapping of node sections")
    return {
        str(k): dict(v.get("ros__parameters") or {}) for k, v in data.items() if isinstance(v, dict)
    }


def _yaml_scalar(value: Scalar) -> str:
    """A parameter value as rcl parses ``-p name:=VALUE`` (YAML): strings that YAML would read
    as something else (``''``, ``true``, ``1.0``) are quoted; lists are flow sequences."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_yaml_scalar(v) for v in value) + "]"
    if isinstance(value, str) and (not value or yaml.safe_load(value) != value):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def default_params_file() -> Path:
    """``config/stack.yaml``: beside the package sources, else in the installed share dir."""
    here = Path(__file__).resolve().parents[1] / PARAMS_RELATIVE
    if here.is_file():
        return here
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory(PACKAGE)) / PARAMS_RELATIVE


SIM = NodeSpec("wm_sim", "sim_node", "wm_sim.sim_node", "wm_sim", sim_only=True)
PYBULLET = NodeSpec(
    "wm_pybullet", "pybullet_node", "wm_pybullet.pybullet_node", "wm_pybullet", sim_only=True
)
PERCEPTION = NodeSpec(
    "wm_perception", "perception_node", "wm_perception.perception_node", "wm_perception"
)
PLANNER = NodeSpec("wm_planner", "planner_node", "wm_planner.planner_node", "wm_planner")
SAFETY = NodeSpec("wm_safety", "safety_node", "wm_safety.safety_node", "wm_safety")

_TOPIC = re.compile(r"^(/[A-Za-z_][A-Za-z0-9_]*)+$")
_JOINT = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")


def _as_simulator(profile: str, value: Any) -> str:
    """``sim:=`` -> the simulator ("mujoco", "gazebo") or "" (none)."""
    if isinstance(value, str) and value.strip().lower() == "gazebo":
        if profile != "sim":
            raise ValueError(f"sim:={value!r}: gazebo goes with the sim profile only")
        return "gazebo"
    if isinstance(value, str) and value.strip().lower() == "pybullet":
        if profile != "real":
            raise ValueError(
                f"sim:={value!r}: pybullet goes with the real profile only (it stands in for a "
                "real arm and camera)"
            )
        return "pybullet"
    if isinstance(value, bool) or str(value).strip().lower() in ("true", "false"):
        return "mujoco" if _as_bool("sim", value) else ""
    allowed = "true, false or gazebo" if profile == "sim" else "true, false or pybullet"
    raise ValueError(f"sim:={value!r} must be {allowed}")


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise ValueError(f"{name}:={value!r} must be true or false")


def _as_topic(name: str, value: Any) -> str:
    topic = str(value).strip()
    if not _TOPIC.match(topic) or "__" in topic:
        raise ValueError(f"{name}:={value!r} must be an absolute topic name such as /a/b")
    return topic


def joint_names_argument(value: Any) -> tuple[str, ...] | None:
    """``joint_names``: six names as a list, ``[a, b, ...]`` or ``a,b,...``; empty: None (the
    URDF's names). ValueError naming the problem."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        text = value.strip()
        parsed = yaml.safe_load(text) if text.startswith("[") else text.split(",")
        if not isinstance(parsed, list):
            raise ValueError(f"joint_names:={value!r} must be a list of six names")
        value = parsed
    names = tuple(str(n).strip() for n in value)
    if len(names) != 6:
        raise ValueError(f"joint_names:={list(names)} must name the arm's 6 joints")
    bad = [n for n in names if not _JOINT.match(n) or n == "suction_cup"]
    if bad:
        raise ValueError(f"joint_names:={list(names)}: {bad} are not usable joint names")
    if len(set(names)) != 6:
        raise ValueError(f"joint_names:={list(names)} has a duplicate name")
    return names


@dataclass(frozen=True)
class _Choices:
    cell_file: str = ""
    joint_names: tuple[str, ...] | None = None
    arm_topic: str = REAL_ARM_COMMAND_TOPIC
    image_topic: str = REAL_IMAGE_TOPIC
    camera_info_topic: str = REAL_CAMERA_INFO_TOPIC
    suction_topic: str = SUCTION_TOPIC
    shadow: bool = False
    use_camera_info_intrinsics: bool = False
    teleop: bool = False
    enclaves: bool = False


def _choices(profile: str, given: Mapping[str, Any]) -> _Choices:
    allowed = {a.name for a in arguments(profile) if not a.launch_only}
    allowed -= {"sim", "backend", "params_file"}  # describe()'s own keywords
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise ValueError(
            f"the {profile} profile has no argument(s) {unknown}; it takes {sorted(allowed)}"
        )
    c = _Choices()
    for key, value in given.items():
        if key == "cell_file":
            c = replace(c, cell_file=str(value).strip())
        elif key == "joint_names":
            c = replace(c, joint_names=joint_names_argument(value))
        elif key.endswith("_topic"):
            c = replace(c, **{key: _as_topic(key, value)})
        else:
            c = replace(c, **{key: _as_bool(key, value)})
    topics = {
        "arm_topic": c.arm_topic,
        "image_topic": c.image_topic,
        "camera_info_topic": c.camera_info_topic,
        "suction_topic": c.suction_topic,
    }
    for key, topic in topics.items():
        if topic in STACK_OWN_TOPICS:
            raise ValueError(f"{key}:={topic} is one of the stack's own topics")
    if len(set(topics.values())) != len(topics):
        raise ValueError(f"the device topics must differ: {topics}")
    return c


def _repository() -> Path:
    """The repository root (``configs/`` lives there): beside the wm_core this process imports,
    else two levels above this package's sources (``ros_ws/src/wm_bringup``)."""
    import importlib.util

    spec = importlib.util.find_spec("wm_core")
    if spec is not None and spec.origin is not None:
        return Path(spec.origin).resolve().parents[1]
    return Path(__file__).resolve().parents[4]


def _remap(src: str, dst: str) -> tuple[tuple[str, str], ...]:
    return () if src == dst else ((src, dst),)


def describe(
    profile: str = "sim",
    *,
    sim: bool | str | None = None,
    backend: str = "",
    params_file: Path | str | None = None,
    overrides: dict[str, dict[str, Scalar]] | None = None,
    arguments: Mapping[str, Any] | None = None,
) -> Stack:
    """The node set of ``profile``. ``sim`` defaults to ``profile == "sim"``; ``arguments``
    holds the profile's other launch arguments (strings as on a command line, or Python
    values); ``overrides`` maps a node name to extra parameters (e.g. the runner's ``--seed``),
    applied last. A bad profile, backend or argument raises ValueError with one line."""
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} must be one of {PROFILES}")
    if backend not in BACKEND_CHOICES:
        raise ValueError(f"backend={backend!r} must be one of {BACKENDS} (or empty)")
    overrides = dict(overrides or {})
    given = dict(arguments or {})
    c = _choices(profile, given)
    if sim is None:
        simulator = "mujoco" if profile == "sim" else ""
    else:
        simulator = _as_simulator(profile, sim)
    sim = bool(simulator)
    sim_time = (("use_sim_time", sim),)
    chosen = (("backend", backend),) if backend else ()  # empty: the parameters file's
    nodes = {
        "wm_sim": replace(SIM, parameters=(("use_sim_time", False),)),
        "wm_pybullet": replace(PYBULLET, parameters=(("use_sim_time", False),)),
        "wm_perception": replace(PERCEPTION, parameters=(*sim_time, *chosen)),
        "wm_planner": replace(PLANNER, parameters=(*sim_time, *chosen)),
        "wm_safety": replace(SAFETY, parameters=sim_time),
    }

    def add(name: str, *params: tuple[str, Scalar], remap: tuple = ()) -> None:
        n = nodes[name]
        nodes[name] = replace(
            n, parameters=(*n.parameters, *params), remappings=(*n.remappings, *remap)
        )

    cell_file = c.cell_file
    if simulator == "pybullet" and not cell_file:  # the brain reads the world's own cell
        cell_file = str(_repository() / PYBULLET_CELL_RELATIVE)
    if cell_file:
        for name in CELL_NODES:
            add(name, ("cell_file", cell_file))
    if profile == "real":
        if sim and c.joint_names is not None:
            raise ValueError(
                "joint_names:= does not go with sim:=true (the simulator's joints are the URDF's)"
            )
        arm = _remap(ARM_COMMAND_TOPIC, c.arm_topic)
        image = _remap(IMAGE_TOPIC, c.image_topic)
        info = _remap(CAMERA_INFO_TOPIC, c.camera_info_topic)
        suction = _remap(SUCTION_TOPIC, c.suction_topic)
        if c.joint_names is not None:
            for name in JOINT_NAME_NODES:
                add(name, ("joint_names", list(c.joint_names)))
        # a simulator standing in for the real arm: it reads the arm's and the suction's topics
        add("wm_sim", remap=arm + image + info + suction)
        add("wm_pybullet", remap=arm + image + info + suction)
        add("wm_perception", remap=image)
        # the planner's action basis is what the arm is sent: in shadow mode, what it would be
        basis = (("arm_command_topic", SHADOW_TOPIC),) if c.shadow else ()
        add(
            "wm_planner",
            *basis,
            ("use_camera_info_intrinsics", c.use_camera_info_intrinsics),
            remap=info + (() if c.shadow else arm),
        )
        add(
            "wm_safety",
            ("suction_in_trajectory", False),
            ("shadow", c.shadow),
            remap=arm + suction,
        )
    if c.teleop:
        if simulator != "pybullet":
            raise ValueError("teleop:=true goes with sim:=pybullet (the world drives the arm)")
        add("wm_pybullet", ("teleop", True))
        add("wm_safety", remap=(("/wm/plan_cmd", TELEOP_TOPIC),))
        del nodes["wm_perception"], nodes["wm_planner"]  # the person drives, not the brain
    if simulator == "gazebo":
        # the joint_trajectory_controller rejects the suction_cup pseudo-joint: the suction goes
        # on /suction/command, which the Gazebo suction relay turns into attach / detach
        add("wm_safety", ("suction_in_trajectory", False))
    if c.enclaves:
        nodes = {name: replace(n, enclave=enclave_of(name)) for name, n in nodes.items()}
    for name, extra in overrides.items():
        if c.teleop and name in ("wm_perception", "wm_planner"):
            continue  # not running (e.g. the runner's --model for them)
        if name not in nodes:
            raise KeyError(f"overrides for unknown node {name!r}")
        fixed = sorted(set(extra) & PROFILE_SET) if profile == "real" else []
        if fixed:
            raise ValueError(
                f"{name}: {fixed} are set by the real profile and its arguments, not overrides"
            )
        merged = dict(nodes[name].parameters) | dict(extra)
        nodes[name] = replace(nodes[name], parameters=tuple(merged.items()))
    pfile = Path(params_file) if params_file else default_params_file()
    return Stack(profile, sim, pfile, tuple(nodes.values()), shadow=c.shadow, simulator=simulator)
