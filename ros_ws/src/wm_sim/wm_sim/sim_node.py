"""``wm_sim``: the MuJoCo table-clearing world as a ROS node (the clock source).

Each tick of a steady (wall) timer at ``control_hz * real_time_factor`` advances the world by
one agent step (1 / control_hz s of physics), toward where the joint trajectory being followed
wants the arm at the end of that step. It then publishes ``/clock``, ``/joint_states`` (with the
``suction_cup`` pseudo-joint), ``/camera/image_raw`` (rgb8) and ``/camera/camera_info``, all
stamped with the simulated time. Before the clock it publishes ``/arm_controller/reference``
(sensor_msgs/JointState, the six arm joints): the follower's desired positions at the end of the
step, as a ``joint_trajectory_controller`` reports its reference in ``~/controller_state``
(the safety node times its commands from it, ``wm_core.safety.pacing``).

Episode control: ``/wm/sim/reset`` (std_msgs/Int64: the seed) starts a new episode, and
``/wm/sim/end_episode`` (std_msgs/Empty) ends the current one early (an evaluator does this when
the planner reports that it is done; the world keeps stepping). Scores go out as JSON
(std_msgs/String) on ``/wm/sim/episode`` every ``metrics_period_s`` while an episode runs and
once when it ends (the last message stands until the next reset):
``wm_core``'s ``episode_metrics()`` (objects, cleared, dropped, sim_time_s, safety events by
kind) plus ``seed``, ``done``, ``end_reason`` (``table_empty``, ``time_limit``, ``ended`` or
``reset``; null while it runs), ``started_s`` and ``stamp_s`` (the simulated times of the
episode's start and of the message) and ``scene`` (the scene settings an evaluation report
records). Those scores use simulator ground truth:
they are for evaluation only and no planner subscribes to them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

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
    parse_trajectory,
)
from wm_bringup.nodekit import (
    CELL_FILE,
    RELIABLE_QOS,
    SENSOR_QOS,
    WORLD_PARAMS,
    Param,
    WmNode,
    cell_of,
    guarded_transition,
    run_node,
)
from wm_bringup.trajectory import TrajectoryFollower
from wm_bringup.world_events import WorldEventLog

from wm_core.sim import SceneConfig, TableClearingEnv

T = TypeVar("T")


class SimNode(WmNode):
    PARAMS = (
        Param("seed", 0, "Seed of the first episode.", 0, 2**31 - 1),
        *(
            Param.of(SceneConfig, name)
            for name in ("n_objects", "image_size", "control_hz", "max_episode_s")
        ),
        Param("real_time_factor", 1.0, "Simulated seconds per wall second (target).", 0.05, 50.0),
        Param.of(SceneConfig, "light_jitter"),
        Param.of(SceneConfig, "camera_jitter_deg"),
        CELL_FILE,
        *WORLD_PARAMS,
    )

    def __init__(self, node_name: str = "wm_sim", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.names = arm_joint_names()
        self.env: TableClearingEnv | None = None
        self._mujoco: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()  # the step vs. the input callbacks (another group)
        self.follower: TrajectoryFollower | None = None
        self.sim_ns = 0
        self.rejected = 0
        self.episode: dict[str, Any] = {"seed": 0, "done": False, "end_reason": None}
        self.scene: dict[str, Any] = {}

    def build_config(self, values: dict[str, Any]) -> SceneConfig:
        super().build_config(values)
        cell_of(values)  # a bad cell file refuses the start / the parameter change
        return SceneConfig(
            n_objects=values["n_objects"],
            image_size=values["image_size"],
            control_hz=values["control_hz"],
            max_episode_s=values["max_episode_s"],
            light_jitter=values["light_jitter"],
            camera_jitter_deg=values["camera_jitter_deg"],
        )

    # ------------------------------------------------------------------ lifecycle
    @guarded_transition
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        v = self.values()
        self.config = self.build_config(v)
        self.cell = cell_of(v)  # the scene is built from it
        # An EGL context is current in one thread only: every MuJoCo call runs on this one.
        self._mujoco = ThreadPoolExecutor(1, thread_name_prefix="wm_sim_mujoco")
        self.env = self._in_mujoco(TableClearingEnv, self.config, self.cell)
        self.events = WorldEventLog(
            self.env.kin, 1.0 / self.config.control_hz, self.config.tool_speed_limit
        )
        self.dt_ns = int(round(1e9 / self.config.control_hz))
        self.sim_ns = int(round(v["clock_start_s"] * 1e9))
        self.frames = {k: v[k] for k in ("base_frame", "camera_frame")}
        c = self.config
        self.scene = {
            "n_objects": c.n_objects,
            "image_size": c.image_size,
            "control_hz": c.control_hz,
            "physics_dt": c.physics_dt,
            "max_episode_s": c.max_episode_s,
            "light_jitter": c.light_jitter,
            "camera_jitter_deg": c.camera_jitter_deg,
            "real_time_factor": v["real_time_factor"],
        }
        self.auto_reset, self.metrics_period_ns = v["auto_reset"], int(v["metrics_period_s"] * 1e9)
        self._reset_episode(v["seed"])
        self.pub_clock = self.create_lifecycle_publisher(ClockMsg, "/clock", RELIABLE_QOS)
        self.pub_js = self.create_lifecycle_publisher(JointState, "/joint_states", RELIABLE_QOS)
        self.pub_ref = self.create_lifecycle_publisher(JointState, REFERENCE_TOPIC, RELIABLE_QOS)
        self.pub_holding = self.create_lifecycle_publisher(
            Bool, SUCTION_HOLDING_TOPIC, RELIABLE_QOS
        )
        self.pub_img = self.create_lifecycle_publisher(Image, "/camera/image_raw", SENSOR_QOS)
        self.pub_info = self.create_lifecycle_publisher(
            CameraInfo, "/camera/camera_info", SENSOR_QOS
        )
        self.pub_episode = self.create_lifecycle_publisher(String, "/wm/sim/episode", RELIABLE_QOS)
        # Inputs in their own group: a step that takes a whole period must not starve them.
        inputs = MutuallyExclusiveCallbackGroup()
        self.subs = [
            self.create_subscription(
                JointTrajectory,
                "/arm_controller/joint_trajectory",
                self._on_trajectory,
                RELIABLE_QOS,
                callback_group=inputs,
            ),
            self.create_subscription(
                Bool, "/suction/command", self._on_suction, RELIABLE_QOS, callback_group=inputs
            ),
            self.create_subscription(
                Int64, "/wm/sim/reset", self._on_reset, RELIABLE_QOS, callback_group=inputs
            ),
            self.create_subscription(
                Empty, "/wm/sim/end_episode", self._on_end, RELIABLE_QOS, callback_group=inputs
            ),
        ]
        period = 1.0 / (self.config.control_hz * v["real_time_factor"])
        self.timer = self.create_timer(
            period, self._tick, clock=Clock(clock_type=ClockType.STEADY_TIME)
        )
        self.get_logger().info(
            f"world ready: {self.config.n_objects} objects, {self.config.image_size} px camera, "
            f"{self.config.control_hz:g} Hz steps at {v['real_time_factor']:g}x real time"
        )
        return TransitionCallbackReturn.SUCCESS

    @guarded_transition
    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.destroy_timer(self.timer)
        for s in self.subs:
            self.destroy_subscription(s)
        pubs = (self.pub_clock, self.pub_js, self.pub_ref, self.pub_holding, self.pub_img)
        pubs += (self.pub_info,)
        for p in (*pubs, self.pub_episode):
            self.destroy_lifecycle_publisher(p)
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def release(self) -> None:
        if self.env is not None:
            self._in_mujoco(self.env.close)
        self.env = None
        if self._mujoco is not None:
            self._mujoco.shutdown()
        self._mujoco = None

    def _in_mujoco(self, fn: Callable[..., T], *args: Any) -> T:
        return self._mujoco.submit(fn, *args).result()

    # ------------------------------------------------------------------ inputs
    def _now_s(self) -> float:
        return self.sim_ns * 1e-9

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        if self.follower is None:
            return
        try:
            traj = parse_trajectory(msg, self.names)
        except ValueError as exc:
            self.rejected += 1
            self.get_logger().warning(f"rejected trajectory: {exc}")
            return
        with self._lock:
            self.follower.set(traj, self._now_s())

    def _on_suction(self, msg: Bool) -> None:
        if self.follower is not None and self.env is not None:
            with self._lock:
                self.follower.set_suction(bool(msg.data), self._now_s())

    def _on_reset(self, msg: Int64) -> None:
        if self.env is None:
            return
        if not 0 <= msg.data < 2**31:
            self.get_logger().warning(f"ignored reset: seed {msg.data} is outside [0, 2^31)")
            return
        with self._lock:
            if not self.episode["done"]:
                self._end_episode("reset")
            self._reset_episode(int(msg.data))

    def _on_end(self, msg: Empty) -> None:
        if self.env is None:
            return
        with self._lock:
            if not self.episode["done"]:
                self._end_episode("ended")

    def _reset_episode(self, seed: int) -> None:
        self.obs, self.info = self._in_mujoco(self.env.reset, seed)
        self.follower = TrajectoryFollower(self.env.q_cmd, False, self.values()["cmd_timeout"])
        self.episode = {"seed": seed, "done": False, "end_reason": None, "started_s": self._now_s()}
        self.next_metrics_ns = self.sim_ns
        self.get_logger().info(f"episode with seed {seed}: {len(self.env.objects)} objects")

    # ------------------------------------------------------------------ the step
    def _tick(self) -> None:
        if not self.active or self.env is None:
            return
        with self._lock:
            self._step()

    def _step(self) -> None:
        env = self.env
        t_end = (self.sim_ns + self.dt_ns) * 1e-9
        if self.follower.expired(self._now_s()):  # commands stopped: hold where the arm is
            self.get_logger().warning(
                f"no command for {self.follower.cmd_timeout_s} s after the last one ended "
                "(cmd_timeout): holding the arm where it is"
            )
            self.follower.hold(self.obs["joint_pos"], bool(self.obs["suction"][0] > 0.5))
        q_target, suction = self.follower.sample(t_end)  # where the arm should be at t_end
        q_from = env.q_cmd.copy()  # [6] the desired joints the tick starts from
        obs, _, terminated, truncated, info = self._in_mujoco(env.step_joint, q_target, suction)
        self.obs, self.info = obs, info
        event = self.events.describe(info, q_from, env.q_cmd, self.follower, self._now_s())
        if event:
            self.get_logger().warning(event)
        self.sim_ns += self.dt_ns
        stamp = Time(nanoseconds=self.sim_ns).to_msg()
        ref = JointState(name=list(self.names), position=[float(x) for x in q_target])
        ref.header.stamp, ref.header.frame_id = stamp, self.frames["base_frame"]
        self.publish(self.pub_ref, ref)
        self.publish(self.pub_clock, ClockMsg(clock=stamp))
        self._publish_sensors(stamp)
        ended = terminated or truncated
        if ended and not self.episode["done"]:
            self._end_episode("table_empty" if terminated else "time_limit")
            if self.auto_reset:
                self._reset_episode(self.episode["seed"] + 1)
        elif not self.episode["done"] and self.sim_ns >= self.next_metrics_ns:
            self._publish_episode(final=False)

    def _end_episode(self, reason: str) -> None:
        self.episode["done"], self.episode["end_reason"] = True, reason
        self._publish_episode(final=True)

    def _publish_sensors(self, stamp) -> None:
        env, obs, v = self.env, self.obs, self.frames
        js = JointState()
        js.header.stamp = stamp
        js.header.frame_id = v["base_frame"]
        js.name = [*self.names, SUCTION_JOINT]
        js.position = [float(x) for x in obs["joint_pos"]] + [float(obs["suction"][0])]
        js.velocity = [float(x) for x in obs["joint_vel"]] + [0.0]
        self.publish(self.pub_js, js)
        self.publish(self.pub_holding, Bool(data=bool(obs["suction_held"][0] > 0.5)))
        img = obs["image"]  # [S, S, 3] uint8
        im = Image(height=img.shape[0], width=img.shape[1], encoding="rgb8", is_bigendian=0)
        im.header.stamp, im.header.frame_id = stamp, v["camera_frame"]
        im.step = 3 * img.shape[1]
        im.data = np.ascontiguousarray(img).tobytes()
        self.publish(self.pub_img, im)
        cam = self._in_mujoco(env.camera_info, "scene_cam")
        info = camera_info(cam.K, cam.width, cam.height, [0.0] * 5, stamp, v["camera_frame"])
        self.publish(self.pub_info, info)  # a pinhole: no distortion

    def _publish_episode(self, final: bool) -> None:
        if self.env is None or self.env.model is None:
            return
        m = self.env.episode_metrics() | {
            "seed": self.episode["seed"],
            "done": final,
            "end_reason": self.episode["end_reason"],
            "started_s": self.episode["started_s"],
            "stamp_s": self._now_s(),
            "scene": self.scene,
        }
        info = self.info  # ground truth: scoring only
        left = ~(info["cleared"] | info["dropped"])  # [K]
        d = np.linalg.norm(info["object_pos"][left, :2] - info["tool_pos"][None, :2], axis=1)
        m["tool_to_nearest_object_m"] = float(d.min()) if d.size else 0.0
        m["rejected_trajectories"] = self.rejected
        self.publish(self.pub_episode, String(data=json.dumps(m)))
        self.next_metrics_ns = self.sim_ns + self.metrics_period_ns

    def diagnostics(self):
        level, msg, kv = super().diagnostics()
        if self.env is not None and self.env.model is not None:
            kv |= {"sim_time_s": f"{self._now_s():.2f}", "seed": self.episode["seed"]}
            kv |= {"rejected_trajectories": self.rejected}
        return level, msg, kv


NODE_CLASS = SimNode


def main(args: list[str] | None = None) -> None:
    raise SystemExit(run_node(SimNode, args))


if __name__ == "__main__":
    main()
