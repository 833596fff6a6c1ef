"""``wm_sim``: the MuJoCo table-clearing world as a ROS node (the clock source).

The topics, the tick, the trajectory follower and episode control are those of every world node
(:mod:`wm_bringup.world_node`): ``/clock``, ``/joint_states``, ``/arm_controller/reference``,
``/camera/image_raw`` and ``/camera/camera_info``, stamped with the simulated time, and the
scores on ``/wm/sim/episode``: ``wm_core``'s ``episode_metrics()`` (objects, cleared, dropped,
sim_time_s, safety events by kind) with the episode's ``seed``, ``done``, ``end_reason``,
``started_s``, ``stamp_s`` and ``scene`` (the ``SceneConfig`` settings an evaluation report
records, and ``real_time_factor``).

Here the world is ``wm_core.sim.TableClearingEnv``: one agent step is ``step_joint`` (1 /
control_hz s of physics), the camera is its ``scene_cam`` (a pinhole: ``camera_info`` with no
distortion). Its renderer's EGL context is current in one thread only, so every MuJoCo call
runs on the node's single-thread executor (``_in_mujoco``).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
from wm_bringup.nodekit import (
    CELL_FILE,
    WORLD_PARAMS,
    Param,
    cell_of,
    fix_mmap_threshold,
    run_node,
)
from wm_bringup.world_node import WorldNode

from wm_core.robot import ArmKinematics
from wm_core.sim import SceneConfig, TableClearingEnv

T = TypeVar("T")


SCENE_PARAMS = (
    "n_objects",
    "image_size",
    "control_hz",
    "max_episode_s",
    "light_jitter",
    "camera_jitter_deg",
    "camera_shift",
    "appearance_jitter",
    "table_height_jitter",
)
"""The SceneConfig fields the node takes as parameters (the rest keep their defaults)."""


class SimNode(WorldNode):
    PARAMS = (
        Param("seed", 0, "Seed of the first episode.", 0, 2**31 - 1),
        *(Param.of(SceneConfig, name) for name in SCENE_PARAMS),
        Param("real_time_factor", 1.0, "Simulated seconds per wall second (target).", 0.05, 50.0),
        CELL_FILE,
        *WORLD_PARAMS,
    )

    def __init__(self, node_name: str = "wm_sim", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.env: TableClearingEnv | None = None
        self._mujoco: ThreadPoolExecutor | None = None

    def build_config(self, values: dict[str, Any]) -> SceneConfig:
        super().build_config(values)
        cell_of(values)  # a bad cell file refuses the start / the parameter change
        return SceneConfig(**{name: values[name] for name in SCENE_PARAMS})

    # ------------------------------------------------------------------ the world
    def open_world(self, values: dict[str, Any]) -> ArmKinematics:
        self.cell = cell_of(values)  # the scene is built from it
        # An EGL context is current in one thread only: every MuJoCo call runs on this one.
        self._mujoco = ThreadPoolExecutor(1, thread_name_prefix="wm_sim_mujoco")
        self.env = self._in_mujoco(TableClearingEnv, self.config, self.cell)
        return self.env.kin

    def release(self) -> None:
        if self.env is not None:
            self._in_mujoco(self.env.close)
        self.env = None
        if self._mujoco is not None:
            self._mujoco.shutdown()
        self._mujoco = None

    def _in_mujoco(self, fn: Callable[..., T], *args: Any) -> T:
        return self._mujoco.submit(fn, *args).result()

    def has_world(self) -> bool:
        return self.env is not None and self.env.model is not None

    def reset_world(self, seed: int) -> None:
        self.obs, self.info = self._in_mujoco(self.env.reset, seed)

    def step_world(self, q_target: np.ndarray, suction: bool) -> tuple[bool, bool, dict]:
        obs, _, terminated, truncated, info = self._in_mujoco(
            self.env.step_joint, q_target, suction
        )
        self.obs, self.info = obs, info
        return terminated, truncated, info

    def observe(self) -> dict[str, np.ndarray]:
        return self.obs

    def held(self) -> tuple[np.ndarray, bool]:
        return self.obs["joint_pos"], bool(self.obs["suction"][0] > 0.5)

    def q_cmd(self) -> np.ndarray:
        return self.env.q_cmd

    def camera(self) -> tuple[Any, int, int, Any]:
        cam = self._in_mujoco(self.env.camera_info, "scene_cam")
        return cam.K, cam.width, cam.height, [0.0] * 5  # a pinhole: no distortion

    def scene_settings(self, values: dict[str, Any]) -> dict[str, Any]:
        c = self.config
        return {
            "physics_dt": c.physics_dt,
            **{name: getattr(c, name) for name in SCENE_PARAMS},
            "real_time_factor": values["real_time_factor"],
        }

    def episode_metrics(self) -> dict[str, Any]:
        return self.env.episode_metrics()

    def ground_truth(self) -> dict[str, np.ndarray]:
        return self.info

    def object_count(self) -> int:
        return len(self.env.objects)

    def ready_line(self, values: dict[str, Any]) -> str:
        c = self.config
        return (
            f"world ready: {c.n_objects} objects, {c.image_size} px camera, "
            f"{c.control_hz:g} Hz steps at {values['real_time_factor']:g}x real time"
        )


NODE_CLASS = SimNode


def main(args: list[str] | None = None) -> None:
    fix_mmap_threshold()  # the MuJoCo model is rebuilt at every reset (nodekit says why)
    raise SystemExit(run_node(SimNode, args))


if __name__ == "__main__":
    main()
