"""The launch files, the runner and the packages name the same nodes, executables, parameters
file and remappings (all read from wm_bringup.stack), and the YAML names only declared
parameters. The launch files run against a tiny recording stand-in for launch/launch_ros (not
installed here), so a drift between them and the stack description fails here."""

from __future__ import annotations

import ast
import importlib
import runpy
import sys
import types
from pathlib import Path

import pytest
import ros_harness
import yaml
from wm_bringup import stack as stack_mod
from wm_bringup.runner import process_commands

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
    module("launch.actions", DeclareLaunchArgument=kind("DeclareLaunchArgument"))
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
    for name, mod in _fake_launch_modules().items():
        monkeypatch.setitem(sys.modules, name, mod)


def load_launch(name: str):
    ns = runpy.run_path(str(LAUNCH / name))
    return ns["generate_launch_description"]()


def nodes_of(ld) -> list[Recorded]:
    return [a for a in ld.args[0] if type(a).__name__ == "Node"]


def arguments_of(ld) -> dict[str, Recorded]:
    return {a.args[0]: a for a in ld.args[0] if type(a).__name__ == "DeclareLaunchArgument"}


@pytest.mark.parametrize("profile", ["sim", "real"])
def test_launch_files_build_the_described_stack(fake_launch, profile):
    ld = load_launch(f"{profile}.launch.py")
    stack = stack_mod.describe(profile)
    args = arguments_of(ld)
    assert set(args) == {"sim", "backend", "params_file", "use_rviz"}
    assert args["sim"].kwargs["default_value"] == ("true" if profile == "sim" else "false")
    params_default = args["params_file"].kwargs["default_value"].args[0]
    assert params_default[0].args == ("wm_bringup",)
    assert "/".join(params_default[1:]) == stack_mod.PARAMS_RELATIVE
    launched = {n.kwargs["name"]: n for n in nodes_of(ld)}
    rviz = launched.pop("rviz2")
    assert rviz.kwargs["condition"].args[0].args == ("use_rviz",)
    assert set(launched) == {n.name for n in stack.nodes}
    for spec in stack.nodes:
        node = launched[spec.name]
        assert (node.kwargs["package"], node.kwargs["executable"]) == (
            spec.package,
            spec.executable,
        )
        assert node.kwargs["remappings"] == list(spec.remappings)
        params_file, overrides = node.kwargs["parameters"]
        assert params_file.args == ("params_file",)
        assert set(overrides) == {k for k, _ in spec.parameters}
        cond = node.kwargs["condition"]
        if spec.sim_only:
            assert cond.args[0].args == ("sim",)
            assert overrides["use_sim_time"] is False
        else:
            assert cond is None
            assert overrides["use_sim_time"].args == ("sim",)
    assert launched["wm_perception"].kwargs["parameters"][1]["backend"].args == ("backend",)
    assert "wm_safety" in launched  # the safety node is always there


def test_real_profile_drives_ros2_control_and_keeps_the_safety_node():
    real = stack_mod.describe("real")
    assert not real.sim and "wm_sim" not in {n.name for n in real.running()}
    safety = real.node("wm_safety")
    assert (stack_mod.ARM_COMMAND_TOPIC, stack_mod.REAL_ARM_COMMAND_TOPIC) in safety.remappings
    assert ("suction_in_trajectory", False) in safety.parameters
    assert ("use_sim_time", False) in real.node("wm_planner").parameters


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
            profile_set = {k for s in stack_mod.describe("real").nodes for k, _ in s.parameters}
            assert not keys & profile_set, "set by the profile/launch arguments, not the file"
    for spec in stack_mod.describe("real").nodes:  # overrides name declared parameters too
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
