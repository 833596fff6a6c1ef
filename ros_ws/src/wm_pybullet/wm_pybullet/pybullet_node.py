"""``wm_pybullet``: the PyBullet table-clearing world as a ROS node (a second, independent world).

It exposes what a real arm and camera expose, on the topics and types of the MuJoCo node
(``wm_sim``) and of the real profile: ``/joint_states`` (with the ``suction_cup`` pseudo-joint),
a joint_trajectory_controller-style follower on ``/arm_controller/joint_trajectory`` with
``cmd_timeout`` (:class:`wm_bringup.trajectory.TrajectoryFollower`, shared with ``wm_sim``),
``/arm_controller/reference`` (the follower's desired positions), ``/camera/image_raw`` (rgb8)
and ``/camera/camera_info`` (the cell camera's K at the rendered size), the suction valve on
``/suction/command`` (std_msgs/Bool), and ``/clock``: each tick of a steady timer at
``control_hz * real_time_factor`` advances the world one agent step and stamps everything with
the simulated time.

Ground truth stays here: scores go out on ``/wm/sim/episode`` (JSON) for the episode driver
only, with ``/wm/sim/reset`` and ``/wm/sim/end_episode``, exactly as ``wm_sim`` does them
(its module docstring), so the same driver (:mod:`wm_bringup.episodes`) scores both worlds.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.time import Time
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool, Empty, Int64, String
from trajectory_msgs.msg import JointTrajectory
from wm_bringup.msgs import (
    REFERENCE_TOPIC,
    SUCTION_HOLDING_TOPIC,
    SUCTION_JOINT,
    arm_joint_names,
    camera_info,
    make_trajectory,
    parse_trajectory,
)
from wm_bringup.nodekit import (
    RELIABLE_QOS,
    SENSOR_QOS,
    WORLD_PARAMS,
    Param,
    StartupError,
    WmNode,
    guarded_transition,
    run_node,
)
from wm_bringup.stack import TELEOP_TOPIC
from wm_bringup.trajectory import TrajectoryFollower
from wm_bringup.world_events import WorldEventLog

from wm_core.cell import PYBULLET_CELL_FILE, load_cell
from wm_core.pybullet_world import PyBulletWorldConfig
from wm_core.robot import ArmKinematics
from wm_pybullet.teleop import ScriptedTeleop

WORLD_FIELDS = ("n_objects", "image_width", "control_hz", "max_episode_s", "calibration_board")
"""The world settings that are node parameters (the rest keep PyBulletWorldConfig's defaults)."""


class PyBulletNode(WmNode):
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
        self.names = arm_joint_names()
        self.world: Any = None  # wm_core.pybullet_world.world.PyBulletWorld, once configured
        self.teleop: ScriptedTeleop | None = None
        self.pub_teleop = None
        self.follower: TrajectoryFollower | None = None
        self._lock = threading.Lock()  # the world is one PyBullet client: one caller at a time
        self.sim_ns, self.rejected = 0, 0
        self.episode: dict[str, Any] = {"seed": 0, "done": False, "end_reason": None}

    def build_config(self, values: dict[str, Any]) -> PyBulletWorldConfig:
        super().build_config(values)
        load_cell(values["cell_file"] or PYBULLET_CELL_FILE)  # a bad cell refuses the start
        return PyBulletWorldConfig(**{k: values[k] for k in WORLD_FIELDS})

    # ------------------------------------------------------------------ lifecycle
    @guarded_transition
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        v = self.values()
        self.config = self.build_config(v)
        try:
            from wm_core.pybullet_world.world import PyBulletWorld
        except ImportError as exc:
            raise StartupError(
                f"the PyBullet world needs the pybullet package ({exc}): pip install "
                "pybullet==3.2.7 (requirements.txt)"
            ) from None
        cell = load_cell(v["cell_file"] or PYBULLET_CELL_FILE)
        self.world = PyBulletWorld(self.config, cell)
        kin = ArmKinematics(base_pose=cell.arm.T_world_base)
        self.events = WorldEventLog(kin, 1.0 / self.config.control_hz, self.config.tool_speed_limit)
        self.teleop = ScriptedTeleop(cell) if v["teleop"] else None
        self.dt_ns = int(round(1e9 / self.config.control_hz))
        self.sim_ns = int(round(v["clock_start_s"] * 1e9))
        self.frames = {k: v[k] for k in ("base_frame", "camera_frame")}
        c, w = self.config, self.world
        self.scene = {  # the keys of wm_sim's (SceneConfig fields the report reads) + ours
            "n_objects": c.n_objects,
            "image_size": w.width,
            "image_height": w.height,
            "control_hz": c.control_hz,
            "physics_hz": c.physics_hz,
            "max_episode_s": c.max_episode_s,
            "light_jitter": 0.0,
            "camera_jitter_deg": 0.0,
            "real_time_factor": v["real_time_factor"],
            "world": "pybullet",
            "cell": w.cell.name,
        }
        self.auto_reset, self.metrics_period_ns = v["auto_reset"], int(v["metrics_period_s"] * 1e9)
        self._reset_episode(v["seed"])
        pub = self.create_lifecycle_publisher
        self.pub_clock = pub(ClockMsg, "/clock", RELIABLE_QOS)
        self.pub_js = pub(JointState, "/joint_states", RELIABLE_QOS)
        self.pub_ref = pub(JointState, REFERENCE_TOPIC, RELIABLE_QOS)
        self.pub_holding = pub(Bool, SUCTION_HOLDING_TOPIC, RELIABLE_QOS)
        self.pub_img = pub(Image, "/camera/image_raw", SENSOR_QOS)
        self.pub_info = pub(CameraInfo, "/camera/camera_info", SENSOR_QOS)
        self.pub_episode = pub(String, "/wm/sim/episode", RELIABLE_QOS)
        self.pub_teleop = pub(JointTrajectory, TELEOP_TOPIC, RELIABLE_QOS) if self.teleop else None
        inputs = MutuallyExclusiveCallbackGroup()  # a slow step must not starve the inputs
        sub = self.create_subscription
        self.subs = [
            sub(
                JointTrajectory,
                "/arm_controller/joint_trajectory",
                self._on_trajectory,
                RELIABLE_QOS,
                callback_group=inputs,
            ),  # fmt: skip
            sub(Bool, "/suction/command", self._on_suction, RELIABLE_QOS, callback_group=inputs),
            sub(Int64, "/wm/sim/reset", self._on_reset, RELIABLE_QOS, callback_group=inputs),
            sub(Empty, "/wm/sim/end_episode", self._on_end, RELIABLE_QOS, callback_group=inputs),
        ]
        period = 1.0 / (c.control_hz * v["real_time_factor"])
        self.timer = self.create_timer(
            period, self._tick, clock=Clock(clock_type=ClockType.STEADY_TIME)
        )
        self.get_logger().info(
            f"PyBullet world ready ({w.cell.name}): {c.n_objects} objects, {w.width}x{w.height} "
            f"camera, {c.control_hz:g} Hz steps at {v['real_time_factor']:g}x real time"
        )
        return TransitionCallbackReturn.SUCCESS

    @guarded_transition
    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.destroy_timer(self.timer)
        for s in self.subs:
            self.destroy_subscription(s)
        pubs = (self.pub_clock, self.pub_js, self.pub_ref, self.pub_holding, self.pub_img)
        for p in (*pubs, self.pub_info):
            self.destroy_lifecycle_publisher(p)
        self.destroy_lifecycle_publisher(self.pub_episode)
        if self.pub_teleop is not None:
            self.destroy_lifecycle_publisher(self.pub_teleop)
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def release(self) -> None:
        with self._lock:
            if self.world is not None:
                self.world.close()
            self.world = None

    # ------------------------------------------------------------------ inputs
    def _now_s(self) -> float:
        return self.sim_ns * 1e-9

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        try:
            traj = parse_trajectory(msg, self.names)
        except ValueError as exc:
            self.rejected += 1
            self.get_logger().warning(f"rejected trajectory: {exc}")
            return
        with self._lock:
            if self.follower is not None:
                self.follower.set(traj, self._now_s())

    def _on_suction(self, msg: Bool) -> None:
        with self._lock:
            if self.follower is not None:
                self.follower.set_suction(bool(msg.data), self._now_s())

    def _on_reset(self, msg: Int64) -> None:
        if not 0 <= msg.data < 2**31:
            self.get_logger().warning(f"ignored reset: seed {msg.data} is outside [0, 2^31)")
            return
        with self._lock:
            if self.world is None:
                return
            if not self.episode["done"]:
                self._end_episode("reset")
            self._reset_episode(int(msg.data))

    def _on_end(self, msg: Empty) -> None:
        with self._lock:
            if self.world is not None and not self.episode["done"]:
                self._end_episode("ended")

    def _reset_episode(self, seed: int) -> None:
        self.world.reset(seed)
        if self.teleop is not None:
            self.teleop.reset(seed)
        self.follower = TrajectoryFollower(self.world.q_cmd, False, self.values()["cmd_timeout"])
        self.episode = {"seed": seed, "done": False, "end_reason": None, "started_s": self._now_s()}
        self.next_metrics_ns = self.sim_ns
        self.get_logger().info(f"episode with seed {seed}: {len(self.world.objects)} objects")

    # ------------------------------------------------------------------ the step
    def _tick(self) -> None:
        with self._lock:
            if self.active and self.world is not None:
                self._step()

    def _step(self) -> None:
        w = self.world
        if self.follower.expired(self._now_s()):  # commands stopped: hold where the arm is
            self.get_logger().warning(
                f"no command for {self.follower.cmd_timeout_s} s after the last one ended "
                "(cmd_timeout): holding the arm where it is"
            )
            self.follower.hold(w.joint_state()[0], w.suction)
        q_target, suction = self.follower.sample((self.sim_ns + self.dt_ns) * 1e-9)
        q_from = w.q_cmd.copy()  # [6] the desired joints the tick starts from
        terminated, truncated = w.step_joint(q_target, suction)
        event = self.events.describe(w.info(), q_from, w.q_cmd, self.follower, self._now_s())
        if event:
            self.get_logger().warning(event)
        self.sim_ns += self.dt_ns
        stamp = Time(nanoseconds=self.sim_ns).to_msg()
        ref = JointState(name=list(self.names), position=[float(x) for x in q_target])
        ref.header.stamp, ref.header.frame_id = stamp, self.frames["base_frame"]
        self.publish(self.pub_ref, ref)
        self.publish(self.pub_clock, ClockMsg(clock=stamp))
        self._publish_sensors(stamp)
        if (terminated or truncated) and not self.episode["done"]:
            self._end_episode("table_empty" if terminated else "time_limit")
            if self.auto_reset:
                self._reset_episode(self.episode["seed"] + 1)
        elif not self.episode["done"] and self.sim_ns >= self.next_metrics_ns:
            self._publish_episode(final=False)

    def _end_episode(self, reason: str) -> None:
        self.episode["done"], self.episode["end_reason"] = True, reason
        self._publish_episode(final=True)

    def _publish_sensors(self, stamp) -> None:
        obs, f = self.world.observation(), self.frames
        js = JointState(name=[*self.names, SUCTION_JOINT])
        js.header.stamp, js.header.frame_id = stamp, f["base_frame"]
        js.position = [float(x) for x in obs["joint_pos"]] + [float(obs["suction"][0])]
        js.velocity = [float(x) for x in obs["joint_vel"]] + [0.0]
        self.publish(self.pub_js, js)
        self.publish(self.pub_holding, Bool(data=bool(obs["suction_held"][0] > 0.5)))
        img = obs["image"]  # [H, W, 3] uint8
        im = Image(height=img.shape[0], width=img.shape[1], encoding="rgb8", is_bigendian=0)
        im.header.stamp, im.header.frame_id = stamp, f["camera_frame"]
        im.step = 3 * img.shape[1]
        im.data = img.tobytes()
        self.publish(self.pub_img, im)
        # the cell's K at the rendered size and its D (the world renders with that distortion)
        w = self.world
        info = camera_info(w.K, w.width, w.height, w.cell.camera.D, stamp, f["camera_frame"])
        self.publish(self.pub_info, info)
        if self.teleop is not None and not self.episode["done"]:
            q, on = self.teleop.command(self.world.info(), obs["joint_pos"])
            cmd = make_trajectory(self.names, q[None], [self.dt_ns * 1e-9], [on])
            cmd.header.stamp = stamp  # the frame it answers (a person reacts to what they saw)
            self.publish(self.pub_teleop, cmd)

    def _publish_episode(self, final: bool) -> None:
        w = self.world
        m = w.episode_metrics() | {
            "seed": self.episode["seed"],
            "done": final,
            "end_reason": self.episode["end_reason"],
            "started_s": self.episode["started_s"],
            "stamp_s": self._now_s(),
            "scene": self.scene,
        }
        info = w.info()  # ground truth: scoring only
        left = ~(info["cleared"] | info["dropped"])  # [K]
        d = np.linalg.norm(info["object_pos"][left, :2] - info["tool_pos"][None, :2], axis=1)
        m["tool_to_nearest_object_m"] = float(d.min()) if d.size else 0.0
        m["rejected_trajectories"] = self.rejected
        self.publish(self.pub_episode, String(data=json.dumps(m)))
        self.next_metrics_ns = self.sim_ns + self.metrics_period_ns

    def diagnostics(self):
        level, msg, kv = super().diagnostics()
        if self.world is not None:
            kv |= {"sim_time_s": f"{self._now_s():.2f}", "seed": self.episode["seed"]}
            kv |= {"rejected_trajectories": self.rejected, "world": "pybullet"}
        return level, msg, kv


NODE_CLASS = PyBulletNode


def main(args: list[str] | None = None) -> None:
    raise SystemExit(run_node(PyBulletNode, args))


if __name__ == "__main__":
    main()
