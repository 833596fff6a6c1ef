"""The launch files, the runner and the packages name the same nodes, executables, parameters
file and remappings (all read from wm_bringup.stack), and the YAML names only declared
parameters. The launch files run against a tiny recording stand-in for launch/launch_ros (not
installed here), so a drift between them and the stack description fails here: for several
choices of launch arguments, the nodes the launch file would start are the ones
``python -m wm_bringup PROFILE NAME:=VALUE`` starts."""

from __future__ import annotations

import ast
import importlib
import runpy
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import ros_harness
import yaml
from transforms3d.quaternions import quat2mat
from wm_bringup import __main__ as bringup_main
from wm_bringup import stack as stack_mod
from wm_bringup.runner import process_commands

from wm_core.cell import SIM_CELL_FILE, cell_or_default

LAUNCH = ros_harness.ROOT / "launch"
SRC = ros_harness.SRC


class Recorded:
    """Stands in for any launch action/substitution/condition: records its arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def _fake_launch_modules() -> dict[str, types.ModuleType]:
    mods = {}

    def module(name: str, **attrs) -> None:
        m = types.ModuleType(name)
        for k, v in attrs.items():
            setattr(m, k, v)
        mods[name] = m

    def kind(name: str) -> type:
        return type(name, (Recorded,), {})

    module("launch", LaunchDescription=kind("LaunchDescription"))
    module(
        "launch.actions",
        DeclareLaunchArgument=kind("DeclareLaunchArgument"),
        OpaqueFunction=kind("OpaqueFunction"),
        IncludeLaunchDescription=kind("IncludeLaunchDescription"),
        LogInfo=kind("LogInfo"),
    )
    module(
        "launch.launch_description_sources",
        PythonLaunchDescriptionSource=kind("PythonLaunchDescriptionSource"),
    )
    module("launch.conditions", IfCondition=kind("IfCondition"))
    module(
        "launch.substitutions",
        LaunchConfiguration=kind("LaunchConfiguration"),
        PathJoinSubstitution=kind("PathJoinSubstitution"),
    )
    module("launch_ros")
    module("launch_ros.actions", Node=kind("Node"))
    module("launch_ros.substitutions", FindPackageShare=kind("FindPackageShare"))
    return mods


@pytest.fixture
def fake_launch(monkeypatch):
    from wm_bringup import launch_builder

    for name, mod in _fake_launch_modules().items():
        monkeypatch.setitem(sys.modules, name, mod)
    # as on a full install: tf2_ros and robot_state_publisher exist (tests/ros_ws/
    # test_launch_gazebo.py checks what a launch does where they do not)
    monkeypatch.setattr(launch_builder, "installed", lambda package: True)


def load_launch(name: str):
    ns = runpy.run_path(str(LAUNCH / name))
    return ns["generate_launch_description"]()


def arguments_of(ld) -> dict[str, Recorded]:
    return {a.args[0]: a for a in ld.args[0] if type(a).__name__ == "DeclareLaunchArgument"}


def launched_actions(ld, given: dict[str, str]) -> list[Recorded]:
    """Run the launch description's OpaqueFunction as ``ros2 launch ... NAME:=VALUE`` would:
    the declared defaults, then the given values, in ``context.launch_configurations``."""
    values = {name: a.kwargs["default_value"] for name, a in arguments_of(ld).items()}
    values |= given
    (opaque,) = [a for a in ld.args[0] if type(a).__name__ == "OpaqueFunction"]
    context = types.SimpleNamespace(launch_configurations=values)
    return list(opaque.kwargs["function"](context))


def launched_nodes(ld, given: dict[str, str]) -> list[Recorded]:
    return [a for a in launched_actions(ld, given) if type(a).__name__ == "Node"]


DESCRIPTION_NODES = ("wm_camera_tf", "wm_base_tf", "robot_state_publisher")
"""What the launch files start beside the stack's nodes, for RViz and Foxglove."""


def static_pose(node: Recorded) -> tuple[str, str, np.ndarray]:
    """(parent, child, [4, 4] pose) of a static_transform_publisher Node's arguments."""
    args = node.kwargs["arguments"]
    value = {args[i][2:]: args[i + 1] for i in range(0, len(args), 2)}
    t = np.eye(4)
    q = [float(value[k]) for k in ("qw", "qx", "qy", "qz")]
    t[:3, :3] = quat2mat(q)
    t[:3, 3] = [float(value[k]) for k in ("x", "y", "z")]
    return value["frame-id"], value["child-frame-id"], t


def check_description_nodes(nodes: dict[str, Recorded], stack: stack_mod.Stack) -> None:
    """The camera's static transform is the cell's T_world_cam (every profile); the sim
    profile adds robot_state_publisher with the URDF and the base's static transform."""
    cell = cell_or_default(stack.cell_file())  # the sim cell, or sim:=pybullet's own
    want = {"wm_camera_tf"} | (
        set() if stack.profile == "real" else {"robot_state_publisher", "wm_base_tf"}
    )
    if stack.simulator == "gazebo":
        want.discard("wm_base_tf")  # the Gazebo URDF has its world joint
    assert set(nodes) == want
    parent, child, pose = static_pose(nodes["wm_camera_tf"])
    assert (parent, child) == ("world", cell.camera.frame_id)
    np.testing.assert_allclose(pose, cell.camera.pose, atol=1e-9)
    if "wm_base_tf" in nodes:
        parent, child, pose = static_pose(nodes["wm_base_tf"])
        assert (parent, child) == ("world", "base_link")
        np.testing.assert_allclose(pose, cell.arm.T_world_base, atol=1e-9)
    if "robot_state_publisher" in nodes:
        (params,) = nodes["robot_state_publisher"].kwargs["parameters"]
        assert params["use_sim_time"] is stack.sim
        assert "<visual>" in params["robot_description"]
        assert ("gz_ros2_control" in params["robot_description"]) == (stack.simulator == "gazebo")


def runner_stack(monkeypatch, profile: str, given: dict[str, str]) -> stack_mod.Stack:
    """The stack ``python -m wm_bringup PROFILE NAME:=VALUE ...`` starts (its ``up`` call,
    caught and passed to describe as the runner does)."""
    got = {}

    def fake_up(profile, **kwargs):
        got["stack"] = stack_mod.describe(
            profile,
            sim=kwargs["sim"],
            backend=kwargs["backend"],
            params_file=kwargs["params_file"],
            overrides=kwargs["overrides"],
            arguments=kwargs["arguments"],
        )
        return 0

    monkeypatch.setattr(bringup_main, "up", fake_up)
    tokens = [f"{k}:={v}" for k, v in given.items() if k != "use_rviz"]
    assert bringup_main.main([profile, *tokens]) == 0
    return got["stack"]


CHOICES = {
    "sim": [
        {},
        {"cell_file": str(SIM_CELL_FILE), "backend": "onnxruntime", "use_rviz": "true"},
        {"enclaves": "true"},
    ],
    "real": [
        {},
        {"shadow": "true"},
        {
            "shadow": "false",
            "joint_names": "[ur_shoulder_pan_joint, ur_shoulder_lift_joint, ur_elbow_joint, "
            "ur_wrist_1_joint, ur_wrist_2_joint, ur_wrist_3_joint]",
            "arm_topic": "/arm/jtc/joint_trajectory",
            "image_topic": "/cam/rgb",
            "camera_info_topic": "/cam/info",
            "suction_topic": "/gripper/suction",
            "cell_file": str(SIM_CELL_FILE),
            "use_camera_info_intrinsics": "true",
            "params_file": "/params/mine.yaml",
        },
        {"sim": "true", "backend": "tensorrt"},
        {"sim": "pybullet"},
        {"sim": "pybullet", "cell_file": str(SIM_CELL_FILE), "shadow": "true"},
    ],
}


@pytest.mark.parametrize(
    ("profile", "given"), [(p, g) for p, gs in CHOICES.items() for g in gs], ids=str
)
def test_launch_files_and_the_runner_start_the_same_nodes(fake_launch, monkeypatch, profile, given):
    ld = load_launch(f"{profile}.launch.py")
    declared = arguments_of(ld)
    assert list(declared) == [a.name for a in stack_mod.arguments(profile)]
    for a in stack_mod.arguments(profile):
        assert declared[a.name].kwargs["default_value"] == a.default
        assert declared[a.name].kwargs.get("choices", []) == list(a.choices)
    assert declared["sim"].kwargs["default_value"] == ("true" if profile == "sim" else "false")
    assert not [n for n in declared if "safety" in n]  # nothing can remove the safety node

    stack = runner_stack(monkeypatch, profile, given)
    launched = {n.kwargs["name"]: n for n in launched_nodes(ld, given)}
    rviz = launched.pop("rviz2", None)
    assert (rviz is not None) == (given.get("use_rviz") == "true")
    check_description_nodes({k: launched.pop(k) for k in DESCRIPTION_NODES if k in launched}, stack)
    assert list(launched) == [n.name for n in stack.running()]
    assert "wm_safety" in launched  # the safety node is always there
    for spec in stack.running():
        node = launched[spec.name]
        assert (node.kwargs["package"], node.kwargs["executable"]) == (
            spec.package,
            spec.executable,
        )
        assert node.kwargs["remappings"] == list(spec.remappings)
        enclave = f"/wm/{spec.name}" if given.get("enclaves") == "true" else None
        assert node.kwargs["ros_arguments"] == ([] if enclave is None else ["--enclave", enclave])
        assert spec.enclave == (enclave or "")
        # a node whose process dies comes back, as in the runner, with bounded retries
        assert node.kwargs["respawn"] is True
        assert node.kwargs["respawn_delay"] == stack_mod.RESPAWN_DELAY_S
        assert node.kwargs["respawn_max_retries"] == stack_mod.CRASH_LOOP[0]
        params_file, overrides = node.kwargs["parameters"]
        assert params_file == str(stack.params_file)
        assert overrides == dict(spec.parameters)
    if "params_file" in given:
        assert str(stack.params_file) == given["params_file"]
    if "backend" in given:
        assert launched["wm_perception"].kwargs["parameters"][1]["backend"] == given["backend"]
    sim_arg = given.get("sim", "true" if profile == "sim" else "false")
    sim = sim_arg in ("true", "pybullet")
    assert ("wm_sim" in launched) == (sim_arg == "true")
    assert ("wm_pybullet" in launched) == (sim_arg == "pybullet")
    for spec in stack.running():
        want = False if spec.sim_only else sim
        assert dict(spec.parameters)["use_sim_time"] is want


def test_launch_files_refuse_a_misspelt_or_foreign_argument(fake_launch):
    """ros2 launch passes undeclared arguments through silently: real.launch.py shadw:=true
    would start a live arm. A near-miss or another profile's argument stops the launch; other
    configurations (a parent launch file's, launch-prefix) pass."""
    real, sim = load_launch("real.launch.py"), load_launch("sim.launch.py")
    with pytest.raises(ValueError, match="no argument 'shadw' \\(did you mean 'shadow'\\?\\)"):
        launched_nodes(real, {"shadw": "true"})
    with pytest.raises(ValueError, match="sim.launch.py has no argument 'shadow'"):
        launched_nodes(sim, {"shadow": "true"})
    started = launched_nodes(sim, {"launch-prefix": "", "robot_ip": "10.0.0.2"})
    wm = [n for n in started if n.kwargs["package"].startswith("wm_")]
    assert len(wm) == 4  # the stack's four nodes (beside them: TF and robot_state_publisher)


def test_real_profile_drives_ros2_control_and_keeps_the_safety_node():
    real = stack_mod.describe("real")
    assert not real.sim and "wm_sim" not in {n.name for n in real.running()}
    safety = real.node("wm_safety")
    assert (stack_mod.ARM_COMMAND_TOPIC, stack_mod.REAL_ARM_COMMAND_TOPIC) in safety.remappings
    assert ("suction_in_trajectory", False) in safety.parameters
    assert ("shadow", False) in safety.parameters
    planner = real.node("wm_planner")
    assert ("use_sim_time", False) in planner.parameters
    assert (stack_mod.ARM_COMMAND_TOPIC, stack_mod.REAL_ARM_COMMAND_TOPIC) in planner.remappings
    assert (stack_mod.CAMERA_INFO_TOPIC, stack_mod.REAL_CAMERA_INFO_TOPIC) in planner.remappings
    assert real.node("wm_perception").remappings == (
        (stack_mod.IMAGE_TOPIC, stack_mod.REAL_IMAGE_TOPIC),
    )


def test_real_profile_arguments_reach_the_nodes():
    names = ["a_pan", "a_lift", "a_elbow", "a_w1", "a_w2", "a_w3"]
    real = stack_mod.describe(
        "real",
        arguments={
            "joint_names": ",".join(names),
            "arm_topic": "/arm/jtc/joint_trajectory",
            "image_topic": "/cam/rgb",
            "camera_info_topic": "/cam/info",
            "suction_topic": "/gripper/suction",
            "cell_file": "/cells/mine.yaml",
        },
    )
    arm = (stack_mod.ARM_COMMAND_TOPIC, "/arm/jtc/joint_trajectory")
    safety, planner = real.node("wm_safety"), real.node("wm_planner")
    assert set(safety.remappings) == {arm, (stack_mod.SUCTION_TOPIC, "/gripper/suction")}
    assert set(planner.remappings) == {arm, (stack_mod.CAMERA_INFO_TOPIC, "/cam/info")}
    assert real.node("wm_perception").remappings == ((stack_mod.IMAGE_TOPIC, "/cam/rgb"),)
    # the simulator standing in for the arm (sim:=true) reads the same device topics
    assert set(real.node("wm_sim").remappings) == {
        arm,
        (stack_mod.IMAGE_TOPIC, "/cam/rgb"),
        (stack_mod.CAMERA_INFO_TOPIC, "/cam/info"),
        (stack_mod.SUCTION_TOPIC, "/gripper/suction"),
    }
    for spec in (safety, planner):
        assert dict(spec.parameters)["joint_names"] == names
        assert dict(spec.parameters)["cell_file"] == "/cells/mine.yaml"
    assert "cell_file" not in dict(real.node("wm_perception").parameters)
    assert dict(real.node("wm_sim").parameters)["cell_file"] == "/cells/mine.yaml"
    cmd = process_commands(real)[[n.name for n in real.running()].index("wm_safety")]
    assert f"wm_safety:joint_names:=[{', '.join(names)}]" in cmd
    assert "/arm_controller/joint_trajectory:=/arm/jtc/joint_trajectory" in cmd


def test_shadow_mode_sends_the_planner_basis_to_the_shadow_topic():
    shadow = stack_mod.describe("real", arguments={"shadow": True})
    assert shadow.shadow
    safety, planner = dict(shadow.node("wm_safety").parameters), shadow.node("wm_planner")
    assert safety["shadow"] is True
    assert dict(planner.parameters)["arm_command_topic"] == stack_mod.SHADOW_TOPIC
    assert not [r for r in planner.remappings if r[0] == stack_mod.ARM_COMMAND_TOPIC]
    live = stack_mod.describe("real", arguments={"shadow": "false"})
    assert "arm_command_topic" not in dict(live.node("wm_planner").parameters)


@pytest.mark.parametrize(
    ("given", "match"),
    [
        ({"arm_topic": "/wm/plan_cmd"}, "stack's own topics"),  # would bypass the filter
        ({"suction_topic": "/wm/shadow/joint_trajectory"}, "stack's own topics"),
        ({"arm_topic": "arm"}, "absolute topic name"),
        ({"image_topic": "/cam/camera_info", "camera_info_topic": "/cam/camera_info"}, "differ"),
        ({"joint_names": "a,b,c"}, "6 joints"),
        ({"joint_names": "a,b,c,d,e,e"}, "duplicate"),
        ({"joint_names": "a,b,c,d,e,suction_cup"}, "not usable"),
        ({"shadow": "maybe"}, "true or false"),
        ({"use_rviz": "true"}, "no argument"),  # launch-only
        ({"safety": "false"}, "no argument"),
    ],
)
def test_real_profile_refuses_bad_arguments(given, match):
    with pytest.raises(ValueError, match=match):
        stack_mod.describe("real", arguments=given)


def test_runner_cli_refuses_bad_arguments_with_one_line(monkeypatch, capsys):
    monkeypatch.setattr(bringup_main, "up", lambda *a, **k: pytest.fail("started"))
    for argv, match in [
        (["real", "shadow:=maybe"], "shadow"),
        (["real", "use_rviz:=true"], "ros2 launch argument only"),
        (["sim", "shadow:=true"], "no argument 'shadow'"),
        (["real", "arm_topic=/x"], "NAME:=VALUE"),
        (["real", "sim:=true", "joint_names:=a,b,c,d,e,f"], "sim:=true"),
        (["real", "--set", "wm_safety:shadow=false"], "set by the real profile"),
        (["real", "--mode", "inprocess", "shadow:=no"], "shadow"),  # options and arguments mix
    ]:
        with pytest.raises(SystemExit) as exc:
            bringup_main.main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert match in err, err


def test_the_nodes_declare_what_the_stack_sets():
    for spec in stack_mod.describe("sim").nodes:
        cls = importlib.import_module(spec.module).NODE_CLASS
        declared = {p.name for p in (*cls.COMMON, *cls.PARAMS)}
        assert ("cell_file" in declared) == (spec.name in stack_mod.CELL_NODES), spec.name
        assert ("joint_names" in declared) == (spec.name in stack_mod.JOINT_NAME_NODES)


@pytest.mark.parametrize("profile", ["sim", "real"])
def test_runner_commands_match_the_stack_and_the_console_scripts(profile):
    stack = stack_mod.describe(profile, backend="onnxruntime")
    cmds = process_commands(stack)
    assert len(cmds) == len(stack.running())
    for spec, cmd in zip(stack.running(), cmds, strict=True):
        assert cmd[1:3] == ["-m", spec.module]
        assert f"__node:={spec.name}" in cmd
        assert cmd[cmd.index("--params-file") + 1] == str(stack.params_file)
        for src, dst in spec.remappings:
            assert f"{src}:={dst}" in cmd
        mod = importlib.import_module(spec.module)
        assert callable(mod.main) and mod.NODE_CLASS.__module__ == spec.module
        assert console_scripts(spec.package)[spec.executable] == f"{spec.module}:main"
    perception = cmds[[n.name for n in stack.running()].index("wm_perception")]
    assert "wm_perception:backend:=onnxruntime" in perception


def console_scripts(package: str) -> dict[str, str]:
    """console_scripts of a package's setup.py, read from its source (f-strings resolved)."""
    tree = ast.parse((SRC / package / "setup.py").read_text())
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr | ast.Constant) and _text(node, package).count("=") == 1:
            text = _text(node, package)
            if ":" in text:
                exe, target = (s.strip() for s in text.split("="))
                out[exe] = target
    return out


def _text(node, package: str) -> str:
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else ""
    return "".join(v.value if isinstance(v, ast.Constant) else package for v in node.values)


def full_real() -> stack_mod.Stack:
    """The real profile with every argument that adds a parameter set."""
    names = "j1,j2,j3,j4,j5,j6"
    args = {"shadow": True, "joint_names": names, "cell_file": "/c.yaml"}
    return stack_mod.describe("real", arguments=args)


def test_params_yaml_names_only_declared_parameters():
    data = yaml.safe_load(stack_mod.default_params_file().read_text())
    declared = {}
    for spec in stack_mod.describe("sim").nodes:
        cls = importlib.import_module(spec.module).NODE_CLASS
        declared[spec.name] = {p.name for p in (*cls.COMMON, *cls.PARAMS)}
    assert set(data) - {"/**"} == set(declared)
    for name, section in data.items():
        keys = set(section["ros__parameters"])
        if name == "/**":
            for key in keys:
                assert any(key in d for d in declared.values()), key
        else:
            assert keys <= declared[name], keys - declared[name]
            profile_set = {k for s in full_real().nodes for k, _ in s.parameters}
            assert not keys & profile_set, "set by the profile/launch arguments, not the file"
    for spec in full_real().nodes:  # overrides name declared parameters too
        for key, _ in spec.parameters:
            assert key == "use_sim_time" or key in declared[spec.name]


def test_packages_install_what_the_launch_files_need():
    setup = (SRC / "wm_bringup" / "setup.py").read_text()
    assert 'glob("../../../launch/*.launch.py")' in setup and 'glob("config/*.yaml")' in setup
    assert sorted(p.name for p in LAUNCH.glob("*.launch.py")) == ["real.launch.py", "sim.launch.py"]
    for spec in stack_mod.describe("sim").nodes:
        pkg = SRC / spec.package
        assert (pkg / "resource" / spec.package).is_file()
        xml = (pkg / "package.xml").read_text()
        assert '<package format="3">' in xml and "<build_type>ament_python</build_type>" in xml
        assert f"<name>{spec.package}</name>" in xml
        assert "<exec_depend>wm_bringup</exec_depend>" in xml


def test_describe_rejects_unknown_names():
    with pytest.raises(ValueError, match="profile"):
        stack_mod.describe("mars")
    with pytest.raises(ValueError, match="backend"):
        stack_mod.describe("sim", backend="caffe")
    with pytest.raises(KeyError, match="wm_nope"):
        stack_mod.describe("sim", overrides={"wm_nope": {"x": 1}})
    assert Path(stack_mod.describe("sim").params_file).is_file()


def test_the_stack_planner_budget_is_the_one_benchmarked_and_validated():
    """``wm bench planner`` times the stack's budget as its ``stack`` row, and the README and
    docs/benchmarks.md report a 50-episode clear-rate run at it: a change to the YAML must
    change them too."""
    from wm_core.bench.planner import BUDGETS

    params = yaml.safe_load(stack_mod.default_params_file().read_text())
    planner = params["wm_planner"]["ros__parameters"]
    budget = {"samples": planner["samples"], "iterations": planner["iterations"]}
    assert budget == BUDGETS["stack"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["up", "real", "shadow:=maybe"], "shadow:='maybe' must be true or false"),
        (["up", "real", "use_rviz:=true"], "ros2 launch argument only"),
        (["up", "real", "sim:=perhaps"], "sim:='perhaps' must be true or false"),
        (["up", "sim", "arm_topic:=/x"], "no argument 'arm_topic'"),
        (["up", "real", "arm_topic:=/wm/plan_cmd"], "stack's own topics"),
        (["up", "real", "cell_file:=C", "--cell", "C"], "give the cell once"),
        (["up", "sim", "cell_file:=C", "--episodes", "1"], "do not go with --episodes"),
    ],
)
def test_wm_up_takes_the_same_arguments_and_refuses_bad_ones(argv, message, capsys):
    from wm_core.cli import main

    argv = [str(stack_mod.default_params_file()) if a == "C" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_node_parameter_ranges_are_the_config_dataclasses():
    """Each range is written once: a node parameter that maps onto a bounded config field has
    that field's default and range, and every node's control_hz has the same range."""
    from dataclasses import fields

    from wm_planner.planner_node import PlannerNode
    from wm_safety.safety_node import SafetyNode
    from wm_sim.sim_node import SimNode

    from wm_core.plan.config import PlannerConfig, TaskConfig
    from wm_core.robot.limits import CONTROL_HZ
    from wm_core.safety import FilterConfig
    from wm_core.sim.config import SceneConfig

    configs = {
        SafetyNode: (FilterConfig,),
        PlannerNode: (PlannerConfig, TaskConfig),
        SimNode: (SceneConfig,),
    }
    checked = 0
    for node, classes in configs.items():
        params = {p.name: p for p in node.PARAMS}
        for cls in classes:
            for f in fields(cls):
                if "range" in f.metadata and f.name in params:
                    p = params[f.name]
                    assert (p.lo, p.hi) == f.metadata["range"], (node.__name__, f.name)
                    assert p.default == f.default, (node.__name__, f.name)
                    checked += 1
    assert checked >= 20  # not vacuous
    ranges = {(p.lo, p.hi) for node in configs for p in node.PARAMS if p.name == "control_hz"}
    assert ranges == {CONTROL_HZ}


def test_sim_gazebo_is_validated_and_keeps_the_brain_nodes():
    gz = stack_mod.describe("sim", sim="gazebo")
    assert gz.sim and gz.simulator == "gazebo"
    assert [n.name for n in gz.running()] == ["wm_perception", "wm_planner", "wm_safety"]
    for spec in gz.running():
        assert dict(spec.parameters)["use_sim_time"] is True
    # a joint_trajectory_controller rejects the suction_cup pseudo-joint
    assert dict(gz.node("wm_safety").parameters)["suction_in_trajectory"] is False
    assert stack_mod.describe("sim").simulator == "mujoco"
    assert stack_mod.describe("sim", sim="false").simulator == ""
    with pytest.raises(ValueError, match="gazebo goes with the sim profile only"):
        stack_mod.describe("real", sim="gazebo")
    with pytest.raises(ValueError, match="must be true, false or gazebo"):
        stack_mod.describe("sim", sim="ignition")
    (sim_arg,) = [a for a in stack_mod.arguments("sim") if a.name == "sim"]
    assert sim_arg.choices == ("true", "false", "gazebo")


def test_sim_pybullet_stands_in_for_the_real_arm_on_its_own_cell():
    """real sim:=pybullet: the PyBullet world on the device topics, the brain on its /clock,
    and every node that reads a cell on the world's own cell (unless cell_file:= names one)."""
    from wm_core.cell import PYBULLET_CELL_FILE

    pb = stack_mod.describe("real", sim="pybullet")
    assert pb.sim and pb.simulator == "pybullet"
    names = [n.name for n in pb.running()]
    assert names == ["wm_pybullet", "wm_perception", "wm_planner", "wm_safety"]
    for spec in pb.running():
        assert dict(spec.parameters)["use_sim_time"] is (spec.name != "wm_pybullet")
        if spec.name in stack_mod.CELL_NODES:
            assert dict(spec.parameters)["cell_file"] == str(PYBULLET_CELL_FILE), spec.name
    assert pb.cell_file() == str(PYBULLET_CELL_FILE)
    world = dict(pb.node("wm_pybullet").remappings)
    assert world == {
        stack_mod.ARM_COMMAND_TOPIC: stack_mod.REAL_ARM_COMMAND_TOPIC,
        stack_mod.IMAGE_TOPIC: stack_mod.REAL_IMAGE_TOPIC,
        stack_mod.CAMERA_INFO_TOPIC: stack_mod.REAL_CAMERA_INFO_TOPIC,
    }  # the suction topic is the real profile's default, /suction/command
    assert dict(pb.node("wm_safety").remappings)[stack_mod.ARM_COMMAND_TOPIC] == (
        stack_mod.REAL_ARM_COMMAND_TOPIC
    )
    mine = stack_mod.describe("real", sim="pybullet", arguments={"cell_file": "/c.yaml"})
    assert mine.cell_file() == "/c.yaml"
    assert "wm_pybullet" not in [n.name for n in stack_mod.describe("real", sim="true").running()]
    with pytest.raises(ValueError, match="pybullet goes with the real profile only"):
        stack_mod.describe("sim", sim="pybullet")
    (sim_arg,) = [a for a in stack_mod.arguments("real") if a.name == "sim"]
    assert sim_arg.choices == ("true", "false", "pybullet")


def test_the_runner_refuses_sim_gazebo_with_one_line(monkeypatch, capsys):
    from wm_bringup.runner import up

    from wm_core.cli import main as wm_main

    monkeypatch.setattr(bringup_main, "up", lambda *a, **k: pytest.fail("started"))
    with pytest.raises(SystemExit) as exc:
        bringup_main.main(["sim", "sim:=gazebo"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "needs Gazebo Harmonic and a full ROS 2 install" in err and err.count("\n") == 1, err
    assert wm_main(["up", "sim", "sim:=gazebo"]) == 2
    err = capsys.readouterr().err
    assert "full ROS 2 install (the Docker image" in err and err.count("\n") == 1, err
    with pytest.raises(ValueError, match="full ROS 2 install"):
        up("sim", sim="gazebo")


def test_sim_gazebo_launch_starts_gazebo_around_the_same_nodes(fake_launch, monkeypatch, tmp_path):
    """``sim.launch.py sim:=gazebo`` (against the recording stand-ins): the Gazebo files are
    generated, gz sim gets the world, the arm is spawned from the Gazebo URDF, the bridge gets
    its YAML, both controllers are spawned, the suction relay knows the objects, and the brain
    nodes are the stack description's, unchanged."""
    monkeypatch.setenv("ROS_HOME", str(tmp_path))
    ld = load_launch("sim.launch.py")
    assert "gz_args" in arguments_of(ld)
    actions = launched_actions(ld, {"sim": "gazebo"})
    nodes = {a.kwargs["name"]: a for a in actions if type(a).__name__ == "Node"}
    stack = stack_mod.describe("sim", sim="gazebo")
    check_description_nodes({k: nodes.pop(k) for k in DESCRIPTION_NODES if k in nodes}, stack)
    for spec in stack.running():
        node = nodes.pop(spec.name)
        assert node.kwargs["parameters"][1] == dict(spec.parameters)
        assert node.kwargs["remappings"] == list(spec.remappings)
    (include,) = [a for a in actions if type(a).__name__ == "IncludeLaunchDescription"]
    gz_args = dict(include.kwargs["launch_arguments"])["gz_args"]
    assert gz_args.startswith("-r -s --headless-rendering ")
    world = Path(gz_args.split()[-1])
    assert world.is_file() and world.name == "world.sdf" and tmp_path in world.parents
    spawn = nodes.pop("wm_spawn_arm")
    assert (spawn.kwargs["package"], spawn.kwargs["executable"]) == ("ros_gz_sim", "create")
    urdf = Path(spawn.kwargs["arguments"][spawn.kwargs["arguments"].index("-file") + 1])
    assert urdf.parent == world.parent and "gz_ros2_control/GazeboSimSystem" in urdf.read_text()
    bridge = nodes.pop("wm_gz_bridge")
    (params,) = bridge.kwargs["parameters"]
    assert Path(params["config_file"]) == world.parent / "bridge.yaml"
    assert params["use_sim_time"] is True
    for controller in ("joint_state_broadcaster", "arm_controller"):
        spawner = nodes.pop(f"spawner_{controller}")
        assert spawner.kwargs["executable"] == "spawner"
        assert spawner.kwargs["arguments"][0] == controller
    suction = nodes.pop("wm_gz_suction")
    assert suction.kwargs["parameters"][0]["objects"] == ["obj0", "obj1", "obj2"]
    assert console_scripts("wm_bringup")["gz_suction"] == "wm_bringup.gz_suction:main"
    assert not nodes, f"unexpected nodes {list(nodes)}"
    # the camera renders wm_sim's image_size at control_hz (the parameters file's)
    params = yaml.safe_load(stack_mod.default_params_file().read_text())
    size = params["wm_sim"]["ros__parameters"]["image_size"]
    rate = params["/**"]["ros__parameters"]["control_hz"]
    sdf = world.read_text()
    assert f"<width>{size}</width><height>{size}</height>" in sdf
    assert f"<update_rate>{rate:g}</update_rate>" in sdf
