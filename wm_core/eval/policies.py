"""Policy interface, the open policy registry, and the two baselines (oracle, random).

A policy sees the observation dict and the step ``info`` dict. Only *privileged* policies
(declared with ``privileged = True``, i.e. the oracle) may read ``info``; the runner passes
``None`` to every other policy, so a learned policy cannot reach simulator ground truth.

New policies register with :func:`register_policy` (in-tree) or through the
``wm.policies`` entry-point group (out-of-tree); ``wm eval --policy NAME`` finds both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Protocol

import numpy as np

from wm_core.cell import Workcell
from wm_core.robot import ArmKinematics
from wm_core.sim.config import SceneConfig

log = logging.getLogger(__name__)


class Policy(Protocol):
    privileged: bool  # may read simulator ground truth (``info``): baselines only
    needs_images: bool  # the runner renders camera images only for policies that use them

    def reset(self, seed: int) -> None: ...

    def act(self, obs: dict, info: dict | None) -> np.ndarray: ...


PolicyFactory = Callable[..., Policy]
"""``factory(scene_config, cell, **options) -> Policy``."""
_REGISTRY: dict[str, PolicyFactory] = {}


def register_policy(name: str) -> Callable[[PolicyFactory], PolicyFactory]:
    def deco(factory: PolicyFactory) -> PolicyFactory:
        _REGISTRY[name] = factory
        return factory

    return deco


def available_policies() -> dict[str, PolicyFactory]:
    """In-tree registrations plus the ``wm.policies`` entry points."""
    found = dict(_REGISTRY)
    for ep in entry_points(group="wm.policies"):
        if ep.name not in found:
            found[ep.name] = ep.load()
    return found


def make_policy(name: str, cfg: SceneConfig, cell: Workcell, **options) -> Policy:
    """Build a registered policy for episodes of ``cfg`` in ``cell``; ``options`` (e.g.
    ``planner="mppi"``) go to its factory."""
    pols = available_policies()
    if name not in pols:
        raise KeyError(f"--policy {name!r} unknown; choose one of {sorted(pols)}")
    return pols[name](cfg, cell, **options)


@register_policy("latent-mpc")
def _latent_mpc(cfg: SceneConfig, cell: Workcell, **options) -> Policy:
    """The product's policy (``wm_core.plan.policy``), imported late: it needs torch, and the
    brain does not import the evaluator."""
    from wm_core.plan.policy import LatentMPCPolicy

    return LatentMPCPolicy(cell, **options)


@register_policy("random")
class RandomPolicy:
    """Uniform random tool deltas; suction toggles at random. The lower bound."""

    privileged = False
    needs_images = False

    def __init__(self, cfg: SceneConfig, cell: Workcell):
        self.rng = np.random.default_rng(0)

    def reset(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed + 7919)

    def act(self, obs: dict, info: dict | None) -> np.ndarray:
        return self.rng.uniform(-1, 1, size=4)


@register_policy("oracle")
class OraclePolicy:
    """Scripted pick-and-place with privileged object poses. The upper bound.

    Nearest object first: hover above it, descend, switch suction on, lift, carry to the
    bin, lower, release, repeat. Moves are unit-clipped tool deltas, like any policy's.
    """

    privileged = True
    needs_images = False
    hover_z = 0.22
    release_z = 0.17

    def __init__(self, cfg: SceneConfig, cell: Workcell):
        self.cfg, self.cell = cfg, cell
        self.kin = ArmKinematics(base_pose=cell.arm.T_world_base)
        self.reset(0)

    def reset(self, seed: int) -> None:
        self.phase = "choose"
        self.target: int | None = None
        self.wait = 0
        self.tries: dict[int, int] = {}

    def _move(self, tool: np.ndarray, goal: np.ndarray, suction: bool) -> tuple[np.ndarray, bool]:
        delta = (goal - tool) / self.cfg.max_tool_step
        n = np.linalg.norm(delta)
        if n > 1.0:
            delta = delta / n
        return np.concatenate([delta, [1.0 if suction else -1.0]]), n < 0.15

    def act(self, obs: dict, info: dict | None) -> np.ndarray:
        if info is None:
            raise ValueError("the oracle is privileged: it needs the simulator's info dict")
        tool = info["tool_pos"]
        pos, hh = info["object_pos"], info["object_half_height"]
        done = info["cleared"] | info["dropped"]
        bin_xy = np.array(self.cell.bin.center)
        if self.target is not None:  # spread drops over a 2x2 grid of slots in the bin
            slot = self.target % 4
            bin_xy = bin_xy + 0.055 * np.array([1 if slot % 2 else -1, 1 if slot // 2 else -1])
        if self.phase == "choose":
            left = [i for i in range(len(pos)) if not done[i] and self.tries.get(i, 0) < 3]
            if not left:
                return self._move(tool, np.array([*bin_xy, self.hover_z]), False)[0]
            self.target = min(left, key=lambda i: np.linalg.norm(pos[i, :2] - tool[:2]))
            self.tries[self.target] = self.tries.get(self.target, 0) + 1
            self.phase = "above"
        i = self.target
        top = pos[i, 2] + hh[i]
        if self.phase == "above":
            a, _ = self._move(tool, np.array([*pos[i, :2], self.hover_z]), False)
            if np.linalg.norm(tool[:2] - pos[i, :2]) < 0.004 and abs(tool[2] - self.hover_z) < 0.01:
                self.phase = "descend"
            return a
        if self.phase == "descend":
            a, _ = self._move(tool, np.array([*pos[i, :2], top - 0.004]), True)
            if tool[2] < top + 0.002 or info["held"][i]:
                self.phase, self.wait = "grip", 3
            return a
        if self.phase == "grip":
            self.wait -= 1
            if self.wait <= 0:
                self.phase = "lift"
            return np.array([0.0, 0.0, -0.2, 1.0])
        if self.phase == "lift":
            a, _ = self._move(tool, np.array([*tool[:2], self.hover_z]), True)
            if not info["held"][i]:
                self.phase = "choose"  # lost it: try again
                return np.array([0.0, 0.0, 1.0, -1.0])
            if tool[2] > self.hover_z - 0.01:
                self.phase = "carry"
            return a
        if self.phase == "carry":
            a, reached = self._move(tool, np.array([*bin_xy, self.hover_z]), True)
            if not info["held"][i]:
                self.phase = "choose"
            elif reached:
                self.phase = "lower"
            return a
        if self.phase == "lower":
            a, reached = self._move(tool, np.array([*bin_xy, self.release_z]), True)
            if reached:
                self.phase, self.wait = "release", 4
            return a
        if self.phase == "release":
            self.wait -= 1
            if self.wait <= 0:
                self.phase = "choose"
            return np.array([0.0, 0.0, 0.0, -1.0])
        raise RuntimeError(f"unknown oracle phase {self.phase}")
