"""The brain never imports the simulator: importing it, and the perception, planner and safety
nodes, works with ``mujoco``, ``wm_core.sim``, ``wm_core.eval`` and ``wm_sim`` made
unimportable, and with the second world (``pybullet``, ``wm_core.pybullet_world``,
``wm_pybullet``) too. (``lint-imports``, run by ``make test``, checks the same statically from the
contracts in pyproject.toml.)"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

BRAIN = [
    "wm_core.cell",
    "wm_core.robot",
    "wm_core.safety",
    "wm_core.models",
    "wm_core.models.readout",
    "wm_core.plan.task",
    "wm_core.plan.costs",
    "wm_core.plan.planner",
    "wm_core.plan.policy",
    "wm_core.train.readout",
    "wm_core.train.trainer",
    "wm_core.calib",
    "wm_core.deploy.backends",
    "wm_core.deploy.tensorrt",
    "wm_core.gazebo",  # not the brain, but it reads only the cell and the arm (pyproject.toml)
]
NODES = ["wm_perception.perception_node", "wm_planner.planner_node", "wm_safety.safety_node"]

BLOCKER = """
import importlib, importlib.abc, sys
BLOCKED = ("mujoco", "wm_core.sim", "wm_core.eval", "wm_sim",
           "pybullet", "wm_core.pybullet_world", "wm_pybullet")
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"{name} is unimportable here (the brain must not need it)")
        return None
sys.meta_path.insert(0, Blocker())
for module in sys.argv[1:]:
    importlib.import_module(module)
leaked = sorted(m for m in sys.modules if any(m == b or m.startswith(b + ".") for b in BLOCKED))
assert not leaked, leaked
print("imported", len(sys.argv) - 1, "modules")
"""


def import_blocked(modules: list[str]) -> subprocess.CompletedProcess:
    paths = [str(ROOT), *(str(p) for p in sorted((ROOT / "ros_ws" / "src").glob("wm_*")))]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    return subprocess.run(
        [sys.executable, "-c", BLOCKER, *modules],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_the_brain_imports_without_the_simulator():
    r = import_blocked(BRAIN)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"imported {len(BRAIN)} modules" in r.stdout


def test_the_brain_nodes_import_without_the_simulator():
    if importlib.util.find_spec("rclpy") is None:
        pytest.skip("rclpy is not installed (the ROS 2 wheels): the nodes cannot be imported")
    r = import_blocked(NODES)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"imported {len(NODES)} modules" in r.stdout


def test_the_blocker_does_block():
    """The check above can fail: the simulator itself does not import under the blocker."""
    r = import_blocked(["wm_core.sim"])
    assert r.returncode != 0 and "unimportable here" in r.stderr
