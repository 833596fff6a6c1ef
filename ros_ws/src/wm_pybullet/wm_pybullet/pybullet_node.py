"""``wm_pybullet``: the PyBullet table-clearing world as a ROS node (a second, independent world).

It exposes what a real arm and camera expose, on the topics and types of the MuJoCo node
(``wm_sim``) and of the real profile: ``/joint_states`` (with the ``suction_cup`` pseudo-joint),
a joint_trajectory_controller-style follower on ``/arm_controller/joint_trajectory`` with
``cmd_timeout`` (:class:`wm_bringup.trajectory.TrajectoryFollower`, shared with ``wm_sim``),
``/arm_controller/reference`` (the follower's desired positions), ``/camera/image_raw`` (rgb8)
and ``/camera/camera_info`` (the cell camera's K at the rendered size), the suction valve on
``/suction/command`` (std_msgs/Bool), and ``/clock``: each tick of a steady timer at
``control_hz * real_time_factor`` advances the world one agent step and stamps everything with
the simulated time. All of that, and the episodes, are every world node's
(:mod:`wm_bringup.world_node`); here the world is ``wm_core.pybullet_world``'s, one PyBullet
client that ``_lock`` keeps to one caller at a time.

Ground truth stays here: scores go out on ``/wm/sim/episode`` (JSON) for the episode driver
only, with ``/wm/sim/reset`` and ``/wm/sim/end_episode``, exactly as ``wm_sim`` does them
(:mod:`wm_bringup.world_node`), so the same driver (:mod:`wm_bringup.episodes`) scores both
worlds. With ``teleop:=true`` the node also drives the arm as a person would
(:class:`wm_pybullet.teleop.ScriptedTeleop`): after each tick's sensors, while the episode runs,
it publishes a command on the teleop topic stamped with that tick's frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from trajectory_msgs.msg import JointTrajectory
from wm_bringup.msgs import make_trajectory
from wm_bringup.nodekit import RELIABLE_QOS, WORLD_PARAMS, Param, StartupError, run_node
from wm_bringup.stack import TELEOP_TOPIC
from wm_bringup.world_node import WorldNode

from wm_core.cell import PYBULLET_CELL_FILE, load_cell
from wm_core.pybullet_world import PyBulletWorldConfig
from wm_core.robot import ArmKinematics
from wm_pybullet.teleop import ScriptedTeleop

WORLD_FIELDS = ("n_objects", "image_width", "control_hz", "max_episode_s", "calibration_board")
"""The world settings that are node parameters (the rest keep PyBulletWorldConfig's defaults)."""


class PyBulletNode(WorldNode):
    PARAMS = (
        Param("seed", 0, "Seed of the first episode.", 0, 2**31 - 1),
        *(Param.of(PyBulletWorldConfig, name) for name in WORLD_FIELDS),
        Param("real_time_factor", 1.0, "Simulated seconds per wall second (target).", 0.05, 50.0),
        Param(
            "cell_file",
            "",
            "Work-cell file the world is built from (the same file the brain reads). Empty: "
            "configs/cells/pybullet.yaml.",
        ),
        Param(
            "teleop",
            False,
            "Scripted teleoperation: the node also drives the arm as a person would, from what "
            f"it sees, with commands on {TELEOP_TOPIC} (for recordings: issue 15's loop).",
            read_only=True,
        ),
        *WORLD_PARAMS,
    )

    def __init__(self, node_name: str = "wm_pybullet", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.world: Any = None  # wm_core.pybullet_world.world.PyBulletWorld, once configured
        self.teleop: ScriptedTeleop | None = None
        self.pub_teleop = None

    def build_config(self, values: dict[str, Any]) -> PyBulletWorldConfig:
        super().build_config(values)
        load_cell(values["cell_file"] or PYBULLET_CELL_FILE)  # a bad cell refuses the start
        return PyBulletWorldConfig(**{k: values[k] for k in WORLD_FIELDS})

    # ------------------------------------------------------------------ the world
    def open_world(self, values: dict[str, Any]) -> ArmKinematics:
        try:
            from wm_core.pybullet_world.world import PyBulletWorld
        except ImportError as exc:
            raise StartupError(
                f"the PyBullet world needs the pybullet package ({exc}): pip install "
                "pybullet==3.2.7 (requirements.txt)"
            ) from None
        cell = load_cell(values["cell_file"] or PYBULLET_CELL_FILE)
        self.world = PyBulletWorld(self.config, cell)
        self.teleop = ScriptedTeleop(cell) if values["teleop"] else None
        return ArmKinematics(base_pose=cell.arm.T_world_base)

    def more_publishers(self) -> list:
        pub = self.create_lifecycle_publisher
        self.pub_teleop = pub(JointTrajectory, TELEOP_TOPIC, RELIABLE_QOS) if self.teleop else None
        return [self.pub_teleop] if self.pub_teleop is not None else []

    def release(self) -> None:
        with self._lock:
            if self.world is not None:
                self.world.close()
            self.world = None

    def has_world(self) -> bool:
        return self.world is not None

    def reset_world(self, seed: int) -> None:
        self.world.reset(seed)
        if self.teleop is not None:
            self.teleop.reset(seed)

    def step_world(self, q_target: np.ndarray, suction: bool) -> tuple[bool, bool, dict]:
        terminated, truncated = self.world.step_joint(q_target, suction)
        return terminated, truncated, self.world.info()

    def observe(self) -> dict[str, np.ndarray]:
        return self.world.observation()

    def held(self) -> tuple[np.ndarray, bool]:
        return self.world.joint_state()[0], self.world.suction

    def q_cmd(self) -> np.ndarray:
        return self.world.q_cmd

    def camera(self) -> tuple[Any, int, int, Any]:
        # the cell's K at the rendered size and its D (the world renders with that distortion)
        w = self.world
        return w.K, w.width, w.height, w.cell.camera.D

    def scene_settings(self, values: dict[str, Any]) -> dict[str, Any]:
        c, w = self.config, self.world
        return {  # the keys of wm_sim's (SceneConfig fields the report reads) + ours
            "n_objects": c.n_objects,
            "image_size": w.width,
            "image_height": w.height,
            "control_hz": c.control_hz,
            "physics_hz": c.physics_hz,
            "max_episode_s": c.max_episode_s,
            "light_jitter": 0.0,
            "camera_jitter_deg": 0.0,
            "real_time_factor": values["real_time_factor"],
            "world": "pybullet",
            "cell": w.cell.name,
        }

    def episode_metrics(self) -> dict[str, Any]:
        return self.world.episode_metrics()

    def ground_truth(self) -> dict[str, np.ndarray]:
        return self.world.info()

    def object_count(self) -> int:
        return len(self.world.objects)

    def ready_line(self, values: dict[str, Any]) -> str:
        c, w = self.config, self.world
        return (
            f"PyBullet world ready ({w.cell.name}): {c.n_objects} objects, {w.width}x{w.height} "
            f"camera, {c.control_hz:g} Hz steps at {values['real_time_factor']:g}x real time"
        )

    def after_sensors(self, stamp: Any, obs: dict[str, np.ndarray]) -> None:
        if self.teleop is not None and not self.episode["done"]:
            q, on = self.teleop.command(self.world.info(), obs["joint_pos"])
            cmd = make_trajectory(self.names, q[None], [self.dt_ns * 1e-9], [on])
            cmd.header.stamp = stamp  # the frame it answers (a person reacts to what they saw)
            self.publish(self.pub_teleop, cmd)

    def diagnostics(self) -> tuple[int, str, dict[str, Any]]:
        level, msg, kv = super().diagnostics()
        if self.world is not None:
            kv["world"] = "pybullet"
        return level, msg, kv


NODE_CLASS = PyBulletNode


def main(args: list[str] | None = None) -> None:
    raise SystemExit(run_node(PyBulletNode, args))


if __name__ == "__main__":
    main()
