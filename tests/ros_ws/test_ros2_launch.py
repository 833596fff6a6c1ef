"""The launch files under the real ROS 2 launch system (``launch``, ``launch_ros``,
``ros2launch``), against the colcon install (ros_ws/install), with every launch argument.

``launch`` and ``launch_ros`` are not on PyPI: this module skips unless they are importable.
``scripts/launch_check.sh LAUNCH_SRC LAUNCH_ROS_SRC`` puts checked-out ros2/launch and
ros2/launch_ros sources on PYTHONPATH and runs it (launch/README.md, "Under the real launch
system").

Each run is ``scripts/ros2_launch.py wm_bringup FILE NAME:=VALUE ...``: the code path of
``ros2 launch`` (ros2launch.api: the launch file found through the ament index, included with
the arguments into a LaunchService), in its own process group, stopped with SIGINT like Ctrl-C.

- Every declared argument (read from ``wm_bringup.stack.arguments``: a new argument fails
  here until it has a value and an expected effect below) is given a non-default value with
  ``launch-prefix`` set to a recorder, so the nodes' real command lines and parameter files,
  as launch_ros wrote them, are checked without starting the nodes.
- Bad values stop the launch with a one-line error, no traceback and no node started.
- Live runs start the nodes and check over DDS that the topics flow, that the remapped topics
  are the ones the nodes use, that shadow mode sends nothing to the arm, and that SIGINT stops
  everything cleanly (status 0, no traceback, no process left).
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
import ros_harness
import yaml
from wm_bringup import stack as stack_mod


def _missing(module: str) -> bool:
    spec = importlib.util.find_spec(module)
    return spec is None or spec.origin is None  # the checkout's launch/ folder is no package


MISSING = [m for m in ("launch", "launch_ros", "ros2launch") if _missing(m)]
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"{', '.join(MISSING)} not importable (not on PyPI): scripts/launch_check.sh "
    "runs this test with ros2/launch and ros2/launch_ros sources",
)

DOMAINS = itertools.cycle((230, 231, 232))
"""This module's ROS_DOMAIN_IDs, in turn (Fast DDS refuses ids above 232: port numbers)."""
ROOT = ros_harness.ROOT
INSTALL = ROOT / "ros_ws" / "install"
DRIVER = ROOT / "scripts" / "ros2_launch.py"
PROFILES = {"sim": "sim.launch.py", "real": "real.launch.py"}
NODES = ("wm_sim", "wm_perception", "wm_planner", "wm_safety")
SHADOW = stack_mod.SHADOW_TOPIC
JOINTS = ["ur_j1", "ur_j2", "ur_j3", "ur_j4", "ur_j5", "ur_j6"]
CELL = ROOT / "configs" / "cells" / "sim.yaml"
SENSOR_TOPICS = {"/camera/image_raw", "/t/image", "/wm/latent"}
"""Best effort, depth 1 (README, "Topics and conventions"); the others are reliable."""


# ----------------------------------------------------------------------------- running launch
def _package_dirs(names: Iterable[str]) -> list[str]:
    """The sys.path entries that hold these packages (the checked-out launch sources)."""
    out = []
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            out.append(str(Path(spec.origin).resolve().parents[1]))
    return out


def launch_env(domain: int, log_dir: Path, extra_prefixes: Iterable[Path] = ()) -> dict[str, str]:
    """The environment ``source ros_ws/install/setup.bash`` gives, plus the launch sources."""
    prefixes = [str(p) for p in extra_prefixes]
    prefixes += sorted(str(p) for p in INSTALL.glob("wm_*") if p.is_dir())
    py = sorted(str(p) for p in INSTALL.glob("wm_*/lib/python3*/site-packages"))
    py += _package_dirs(("launch", "launch_ros", "ros2launch", "osrf_pycommon", "lark"))
    py += _package_dirs(("composition_interfaces", "lifecycle_msgs"))
    env = dict(os.environ)
    for key, add in (("AMENT_PREFIX_PATH", prefixes), ("PYTHONPATH", py)):
        old = [p for p in env.get(key, "").split(os.pathsep) if p]
        env[key] = os.pathsep.join(dict.fromkeys(add + old))
    env.update(
        ROS_DOMAIN_ID=str(domain),
        ROS_LOG_DIR=str(log_dir),
        RCUTILS_COLORIZED_OUTPUT="0",
        PYTHONUNBUFFERED="1",
        TMPDIR=str(log_dir.parent),  # launch_ros's parameter files (it leaves them behind)
    )
    return env


@dataclass
class Launched:
    proc: subprocess.Popen
    log: Path

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def node_pids(self) -> list[int]:
        out = []
        for line in self.output.splitlines():
            if "process started with pid [" in line:
                out.append(int(line.rsplit("[", 1)[1].rstrip("]")))
        return out

    def interrupt(self, timeout: float = 40.0) -> int:
        """SIGINT (Ctrl-C) to the launch process, then wait for it; its exit status."""
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=timeout)

    def leftovers(self) -> list[int]:
        """Processes of this launch still running (its process group, its nodes' pids)."""
        left = []
        try:
            os.killpg(self.proc.pid, 0)
            left.append(-self.proc.pid)
        except ProcessLookupError:
            pass
        for pid in self.node_pids():
            try:
                os.kill(pid, 0)
                left.append(pid)
            except ProcessLookupError:
                pass
        return left

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def start_launch(
    profile, args, *, tmp_path, domain, prefix=None, extra_prefixes=(), ignore_sigint=False
) -> Launched:
    env = launch_env(domain, tmp_path / "ros_log", extra_prefixes)
    cmd = [sys.executable, str(DRIVER), stack_mod.PACKAGE, PROFILES[profile]]
    cmd += [f"{k}:={v}" for k, v in args.items()]
    if prefix:
        cmd.append(f"launch-prefix:={prefix}")
    log = tmp_path / f"launch-{time.monotonic_ns()}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: leftovers are visible, and killed
            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
            if ignore_sigint
            else None,
        )
    return Launched(proc, log)


@pytest.fixture
def launcher(tmp_path):
    """start(profile, args, **kw) -> Launched; whatever is still running at teardown is killed."""
    runs: list[Launched] = []

    def start(profile, args, **kw):
        kw.setdefault("domain", next(DOMAINS))
        run = start_launch(profile, args, tmp_path=tmp_path, **kw)
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.alive():
            with contextlib.suppress(subprocess.TimeoutExpired):
                run.interrupt(timeout=20)
        run.kill()


@pytest.fixture(scope="module", autouse=True)
def _install_is_current():
    """The launch runs the colcon install: it must be this checkout's launch files and code."""
    pairs = [
        (ROOT / "launch" / f, INSTALL / "wm_bringup/share/wm_bringup/launch" / f)
        for f in PROFILES.values()
    ]
    pkg = INSTALL / "wm_bringup/lib/python3.11/site-packages/wm_bringup"
    src = ROOT / "ros_ws/src/wm_bringup/wm_bringup"
    pairs += [(f, pkg / f.name) for f in sorted(src.glob("*.py"))]  # stack, builder, nodekit
    stale = [str(b) for a, b in pairs if not b.is_file() or a.read_bytes() != b.read_bytes()]
    if stale:
        pytest.fail(f"the colcon install is stale or missing (run scripts/bootstrap.sh): {stale}")


# ----------------------------------------------------------------------------- recorded runs
RECORDER = """#!/bin/sh
# launch-prefix: record the node's command line (NUL-separated), then wait for SIGINT.
printf '%s\\0' "$@" > "{out}/$$.args"
trap 'exit 0' INT TERM
sleep 600 &
wait
"""


class _ParamsLoader(yaml.SafeLoader):
    """launch_ros dumps list parameters as ``!!python/tuple`` (yaml.dump of its normalized
    tuples); rcl reads them as arrays, and so does this loader."""


_ParamsLoader.add_constructor(
    "tag:yaml.org,2002:python/tuple", lambda loader, node: loader.construct_sequence(node)
)


@dataclass
class Command:
    """A node command line as launch_ros built it."""

    argv: list[str]

    @property
    def executable(self) -> str:
        return Path(self.argv[0]).name

    def ros_args(self, flag: str) -> list[str]:
        return [self.argv[i + 1] for i, a in enumerate(self.argv[:-1]) if a == flag]

    @property
    def name(self) -> str:
        for r in self.ros_args("-r"):
            if r.startswith("__node:="):
                return r.split(":=", 1)[1]
        return self.executable

    @property
    def remaps(self) -> dict[str, str]:
        return dict(r.split(":=", 1) for r in self.ros_args("-r") if not r.startswith("__"))

    @property
    def params(self) -> dict:
        """The node's parameters: its params files in order (later wins), as rcl reads them."""
        out: dict = {}
        for f in self.ros_args("--params-file"):
            data = yaml.load(Path(f).read_text(), Loader=_ParamsLoader) or {}
            for key in ("/**", self.name, f"/{self.name}"):
                out.update((data.get(key) or {}).get("ros__parameters", {}))
        return out

    @property
    def params_files(self) -> list[str]:
        return self.ros_args("--params-file")


def recorded_launch(launcher, tmp_path, profile, args, expect_nodes, **kw) -> dict[str, Command]:
    """Launch with the recorder as launch-prefix until ``expect_nodes`` commands are recorded;
    {node name: Command}. Asserts the launch itself then stops cleanly on SIGINT."""
    out = tmp_path / "argv"
    out.mkdir(exist_ok=True)
    rec = tmp_path / "record.sh"
    rec.write_text(RECORDER.format(out=out))
    rec.chmod(0o755)
    run = launcher(profile, args, prefix=str(rec), **kw)
    end = time.monotonic() + 30
    while time.monotonic() < end and run.alive() and len(list(out.glob("*.args"))) < expect_nodes:
        time.sleep(0.1)
    time.sleep(0.3)  # a node beyond the expected count would show up here
    assert run.alive(), f"launch exited early:\n{run.output}"
    assert run.interrupt() == 0, run.output
    assert "Traceback" not in run.output, run.output
    commands = [Command(f.read_bytes().decode().split("\0")[:-1]) for f in out.glob("*.args")]
    by_name = {c.name: c for c in commands}
    assert len(by_name) == len(commands) == expect_nodes, (sorted(by_name), run.output)
    return by_name


def _fake_rviz(tmp_path: Path) -> Path:
    """An ament prefix with a package ``rviz2`` (not on PyPI) whose executable exists."""
    prefix = tmp_path / "rviz_prefix"
    (prefix / "share/ament_index/resource_index/packages").mkdir(parents=True)
    (prefix / "share/ament_index/resource_index/packages/rviz2").write_text("")
    exe = prefix / "lib/rviz2/rviz2"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return prefix


# For each launch argument: a non-default value, and a check of its effect on the commands
# launch_ros built ({node: Command}) against those of the defaults, as launch/README.md says.
def _sim_false(c, d):
    assert "wm_sim" not in c and "wm_sim" in d
    assert all(c[n].params["use_sim_time"] is False for n in c)
    assert all(d[n].params["use_sim_time"] is True for n in d if n != "wm_sim")


def _sim_true(c, d):  # real profile: the simulator stands in for the arm, on its /clock
    assert "wm_sim" in c and "wm_sim" not in d
    assert (
        c["wm_sim"].remaps["/arm_controller/joint_trajectory"] == stack_mod.REAL_ARM_COMMAND_TOPIC
    )
    assert c["wm_sim"].remaps["/camera/image_raw"] == stack_mod.REAL_IMAGE_TOPIC
    assert all(c[n].params["use_sim_time"] is True for n in c if n != "wm_sim")


def _backend(c, d):
    for n in ("wm_perception", "wm_planner"):  # both run the world model
        assert c[n].params["backend"] == "onnxruntime", n
        assert d[n].params["backend"] == "torch", n


def _params_file(c, d):
    for n in NODES:
        if n not in c:
            continue
        assert c[n].params_files[0] == str(CELL), c[n].argv  # stands in for a params YAML
        assert d[n].params_files[0].endswith("share/wm_bringup/config/stack.yaml")


def _cell_file(c, d):
    for n in (n for n in NODES if n in c):
        if n in stack_mod.CELL_NODES:
            assert c[n].params["cell_file"] == str(CELL), n
        else:  # perception reads no cell
            assert c[n].params.get("cell_file") != str(CELL), n
    assert all(d[n].params.get("cell_file") == "" for n in d)


def _enclaves(c, d):
    for n in (n for n in NODES if n in c):
        assert c[n].ros_args("--enclave") == [f"/wm/{n}"], c[n].argv
        assert d[n].ros_args("--enclave") == []


def _use_rviz(c, d):
    assert "rviz2" in c and "rviz2" not in d
    (config,) = [a for i, a in enumerate(c["rviz2"].argv) if c["rviz2"].argv[i - 1] == "-d"]
    assert config.endswith("share/wm_bringup/config/wm.rviz") and Path(config).is_file()


def _gz_args(c, d):
    # Gazebo's own arguments: with the default sim:=true (MuJoCo) nothing changes and no gz
    # process starts; what sim:=gazebo does with them is tests/ros_ws/test_launch_gazebo.py's
    # (the launch that shows it also has use_rviz:=true, hence rviz2)
    assert set(c) - {"rviz2"} == set(d) and not any("gz" in n for n in c)


def _joint_names(c, d):
    for n in stack_mod.JOINT_NAME_NODES:
        assert c[n].params["joint_names"] == JOINTS, n
        assert "joint_names" not in d[n].params


def _remap(node: str, internal: str, value: str):
    def check(c, d):
        assert c[node].remaps[internal] == value, c[node].argv
        assert d[node].remaps.get(internal) != value

    return check


def _arm_topic(c, d):
    for n in ("wm_planner", "wm_safety"):  # the planner's action basis, the safety's output
        _remap(n, stack_mod.ARM_COMMAND_TOPIC, "/my/arm")(c, d)


def _shadow(c, d):
    assert c["wm_safety"].params["shadow"] is True and d["wm_safety"].params["shadow"] is False
    assert c["wm_planner"].params["arm_command_topic"] == SHADOW
    # the planner's basis is the shadow topic, not the arm: no arm remap in shadow mode
    assert stack_mod.ARM_COMMAND_TOPIC not in c["wm_planner"].remaps
    assert stack_mod.ARM_COMMAND_TOPIC in d["wm_planner"].remaps


def _teleop(c, d):  # with sim:=pybullet: the world drives the arm through the safety node
    assert set(c) == {"wm_pybullet", "wm_safety"} and {"wm_perception", "wm_planner"} <= set(d)
    assert c["wm_pybullet"].params["teleop"] is True
    assert c["wm_safety"].remaps["/wm/plan_cmd"] == stack_mod.TELEOP_TOPIC
    assert "/wm/plan_cmd" not in d["wm_safety"].remaps


def _intrinsics(c, d):
    assert c["wm_planner"].params["use_camera_info_intrinsics"] is True
    assert d["wm_planner"].params["use_camera_info_intrinsics"] is False


EFFECTS = {
    ("sim", "sim"): ("false", _sim_false),
    ("real", "sim"): ("true", _sim_true),
    ("*", "backend"): ("onnxruntime", _backend),
    ("*", "params_file"): (str(CELL), _params_file),
    ("*", "cell_file"): (str(CELL), _cell_file),
    ("*", "enclaves"): ("true", _enclaves),
    ("*", "use_rviz"): ("true", _use_rviz),
    ("sim", "gz_args"): ("-r -v 4", _gz_args),
    ("real", "joint_names"): ("[" + ", ".join(JOINTS) + "]", _joint_names),
    ("real", "arm_topic"): ("/my/arm", _arm_topic),
    ("real", "image_topic"): (
        "/my/image",
        _remap("wm_perception", "/camera/image_raw", "/my/image"),
    ),
    ("real", "camera_info_topic"): (
        "/my/info",
        _remap("wm_planner", "/camera/camera_info", "/my/info"),
    ),
    ("real", "suction_topic"): (
        "/my/suction",
        _remap("wm_safety", "/suction/command", "/my/suction"),
    ),
    ("real", "shadow"): ("true", _shadow),
    ("real", "use_camera_info_intrinsics"): ("true", _intrinsics),
    ("real", "teleop"): ("true", _teleop),
}


def _effect(profile: str, name: str):
    return EFFECTS.get((profile, name)) or EFFECTS.get(("*", name))


DECLARED = [(p, a.name) for p in PROFILES for a in stack_mod.arguments(p)]


def _node_count(profile: str, args: dict[str, str]) -> int:
    if args.get("teleop") == "true":  # the PyBullet world and the safety node
        return 2 + (args.get("use_rviz") == "true")
    sim = args.get("sim", "true" if profile == "sim" else "false") == "true"
    return 3 + sim + (args.get("use_rviz") == "true")


ISOLATED = {"sim", "shadow", "teleop"}
"""Arguments that change which nodes run or how they are wired: each gets a launch of its own.
The others of a profile are given together in one launch (each checked on its own below)."""


def _run_args(profile: str, name: str) -> dict[str, str]:
    """The arguments of the launch whose commands show ``name``'s effect."""
    if name == "teleop":  # goes with sim:=pybullet only
        return {"sim": "pybullet", "teleop": "true"}
    if name in ISOLATED:
        return {name: _effect(profile, name)[0]}
    return {
        a.name: _effect(profile, a.name)[0]
        for a in stack_mod.arguments(profile)
        if a.name not in ISOLATED and _effect(profile, a.name) is not None
    }


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """recorded(profile, args, launcher) -> {node: Command}, one launch per distinct call."""
    cache: dict = {}

    def get(profile: str, args: dict[str, str], launcher) -> dict[str, Command]:
        key = (profile, tuple(sorted(args.items())))
        if key not in cache:
            tmp = tmp_path_factory.mktemp(f"recorded_{profile}")
            rviz = _fake_rviz(tmp)
            n = _node_count(profile, args)
            cache[key] = recorded_launch(launcher, tmp, profile, args, n, extra_prefixes=[rviz])
        return cache[key]

    return get


@pytest.mark.parametrize("profile", PROFILES)
def test_defaults_start_the_profiles_nodes(profile, launcher, recorded):
    cmds = recorded(profile, {}, launcher)
    expected = {n.name for n in stack_mod.describe(profile).running()}
    assert set(cmds) == expected
    for name, cmd in cmds.items():
        spec = stack_mod.describe(profile).node(name)
        # the installed console script of the colcon install, found through the ament index
        assert cmd.argv[0] == str(INSTALL / spec.package / "lib" / spec.package / spec.executable)
        # the simulator is the clock; every other node is on sim time exactly when it runs
        assert cmd.params["use_sim_time"] is (profile == "sim" and name != "wm_sim")


@pytest.mark.parametrize(("profile", "name"), DECLARED, ids=[f"{p}-{n}" for p, n in DECLARED])
def test_each_argument_does_what_the_readme_says(profile, name, launcher, recorded):
    effect = _effect(profile, name)
    assert effect is not None, (
        f"{profile}.launch.py declares {name!r}: give it a non-default value and a check of "
        "its effect in EFFECTS (tests/ros_ws/test_ros2_launch.py)"
    )
    value, check = effect
    default = {a.name: a.default for a in stack_mod.arguments(profile)}[name]
    assert value != default
    args = _run_args(profile, name)
    check(recorded(profile, args, launcher), recorded(profile, {}, launcher))


def test_sigint_stops_a_launch_started_with_sigint_ignored(launcher, tmp_path):
    """A background job of a non-interactive shell starts with SIGINT ignored; the driver
    restores Python's handler, so kill -INT still stops the launch (the nodes with it)."""
    cmds = recorded_launch(launcher, tmp_path, "real", {}, 3, ignore_sigint=True)
    assert set(cmds) == {"wm_perception", "wm_planner", "wm_safety"}


# ----------------------------------------------------------------------------- bad values
BAD = [
    ("sim", {"backend": "cuda"}, '"backend" provided value "cuda" is not valid'),
    ("sim", {"sim": "maybe"}, '"sim" provided value "maybe" is not valid'),
    ("sim", {"shadow": "true"}, "sim.launch.py has no argument 'shadow'"),  # real's only
    ("real", {"shadw": "true"}, "no argument 'shadw' (did you mean 'shadow'?)"),
    ("real", {"shadow": "yes"}, '"shadow" provided value "yes" is not valid'),
    ("real", {"arm_topic": "/wm/plan_cmd"}, "arm_topic:=/wm/plan_cmd is one of the stack's own"),
    ("real", {"image_topic": "camera"}, "must be an absolute topic name"),
    ("real", {"suction_topic": "/my/arm", "arm_topic": "/my/arm"}, "device topics must differ"),
    ("real", {"joint_names": "a,b,c"}, "must name the arm's 6 joints"),
    ("real", {"sim": "true", "joint_names": ",".join(JOINTS)}, "does not go with sim:=true"),
]


@pytest.mark.parametrize(("profile", "args", "message"), BAD, ids=[str(b[1]) for b in BAD])
def test_a_bad_value_stops_the_launch_with_one_line(profile, args, message, launcher):
    run = launcher(profile, args)
    status = run.proc.wait(timeout=30)
    out = run.output
    assert status != 0, out
    assert "Traceback" not in out, out
    assert run.node_pids() == [], out
    # launch's own last word: "Caught exception in launch (...): <the one-line reason>"
    # (a bad choice is also logged once before it by DeclareLaunchArgument, the same line)
    errors = [line for line in out.splitlines() if "[ERROR]" in line]
    assert errors and all(message in line for line in errors), out
    assert "Caught exception in launch" in errors[-1], out


# ----------------------------------------------------------------------------- live runs
def _counts(ros, topics: dict[str, type]) -> dict[str, list]:
    from wm_bringup.nodekit import RELIABLE_QOS, SENSOR_QOS

    out = {}
    for topic, msg_type in topics.items():
        qos = SENSOR_QOS if topic in SENSOR_TOPICS else RELIABLE_QOS
        out[topic] = ros.collect(msg_type, topic, qos)
    return out


def _nodes_on(ros, topic: str, kind: str) -> set[str]:
    infos = (
        ros.probe.get_publishers_info_by_topic(topic)
        if kind == "pub"
        else ros.probe.get_subscriptions_info_by_topic(topic)
    )
    return {i.node_name for i in infos} - {ros.probe.get_name()}  # the stack's nodes only


def _clean_stop(run: Launched) -> None:
    status = run.interrupt()
    out = run.output
    assert status == 0, out
    assert "Traceback" not in out, out
    assert "[ERROR]" not in out and "Failed to" not in out, out
    assert run.leftovers() == [], out
    for pid in run.node_pids():
        assert f"process has finished cleanly [pid {pid}]" in out, out


def test_sim_launch_runs_the_stack_and_stops_cleanly(launcher):
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image, JointState
    from trajectory_msgs.msg import JointTrajectory

    domain = next(DOMAINS)
    ros = ros_harness.Ros(domain)
    try:
        got = _counts(
            ros,
            {
                "/clock": Clock,
                "/joint_states": JointState,
                "/camera/image_raw": Image,
                "/wm/latent": Image,
                "/wm/plan_cmd": JointTrajectory,
                stack_mod.ARM_COMMAND_TOPIC: JointTrajectory,
            },
        )
        run = launcher("sim", {}, domain=domain)
        flowing = ros.spin_until(lambda: all(len(v) >= 3 for v in got.values()), timeout=90)
        assert flowing, ({k: len(v) for k, v in got.items()}, run.output)
        assert _nodes_on(ros, stack_mod.ARM_COMMAND_TOPIC, "pub") == {"wm_safety"}
        assert len(run.node_pids()) == 4
    finally:
        ros.close()
    _clean_stop(run)


@pytest.mark.parametrize("shadow", [True, False], ids=["shadow", "live"])
def test_real_launch_remapped_topics_and_shadow(shadow, launcher, tmp_path):
    """real.launch.py with the simulator standing in for the arm (sim:=true), every device
    topic remapped and a cell file given: the nodes use the remapped topics; in shadow mode
    the safety node publishes on the shadow topic and has no publisher on the arm or suction
    topic (nothing reaches them), live it drives the remapped arm topic."""
    from sensor_msgs.msg import Image
    from std_msgs.msg import Bool
    from trajectory_msgs.msg import JointTrajectory

    cell = tmp_path / "mycell.yaml"
    cell.write_bytes(CELL.read_bytes())
    args = {
        "sim": "true",
        "shadow": str(shadow).lower(),
        "cell_file": str(cell),
        "arm_topic": "/t/arm",
        "image_topic": "/t/image",
        "camera_info_topic": "/t/info",
        "suction_topic": "/t/suction",
    }
    domain = next(DOMAINS)
    ros = ros_harness.Ros(domain)
    try:
        got = _counts(
            ros,
            {
                "/t/image": Image,
                "/wm/latent": Image,
                "/wm/plan_cmd": JointTrajectory,
                SHADOW: JointTrajectory,
                "/t/arm": JointTrajectory,
                "/t/suction": Bool,
                stack_mod.ARM_COMMAND_TOPIC: JointTrajectory,
            },
        )
        out_topic = SHADOW if shadow else "/t/arm"
        run = launcher("real", args, domain=domain)
        need = ("/t/image", "/wm/latent", "/wm/plan_cmd", out_topic)
        flowing = ros.spin_until(lambda: all(len(got[t]) >= 5 for t in need), timeout=90)
        assert flowing, ({k: len(v) for k, v in got.items()}, run.output)
        ros.spin_for(1.0)
        # the remapped topics are the ones the nodes use
        assert "wm_perception" in _nodes_on(ros, "/t/image", "sub")
        assert "wm_planner" in _nodes_on(ros, "/t/info", "sub")
        assert _nodes_on(ros, "/camera/image_raw", "sub") == set()
        arm_readers = {"wm_sim"} if shadow else {"wm_sim", "wm_planner"}  # planner: its basis
        assert _nodes_on(ros, "/t/arm", "sub") == arm_readers
        assert "wm_sim" in _nodes_on(ros, "/t/suction", "sub")
        assert _nodes_on(ros, stack_mod.ARM_COMMAND_TOPIC, "pub") == set()
        assert got[stack_mod.ARM_COMMAND_TOPIC] == []
        if shadow:
            assert _nodes_on(ros, SHADOW, "pub") == {"wm_safety"}
            assert _nodes_on(ros, "/t/arm", "pub") == set()
            assert _nodes_on(ros, "/t/suction", "pub") == set()
            assert got["/t/arm"] == [] and got["/t/suction"] == []
            assert all(len(m.joint_names) == 7 for m in got[SHADOW])  # six joints + suction
        else:
            assert _nodes_on(ros, "/t/arm", "pub") == {"wm_safety"}
            assert _nodes_on(ros, "/t/suction", "pub") == {"wm_safety"}
            assert _nodes_on(ros, SHADOW, "pub") == set() and got[SHADOW] == []
            assert all(len(m.joint_names) == 6 for m in got["/t/arm"])  # suction on its topic
        # the cell file reached the safety node
        assert f"cell {cell}" in run.output, run.output
    finally:
        ros.close()
    _clean_stop(run)
