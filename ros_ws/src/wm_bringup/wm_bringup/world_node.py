"""What the simulated-world nodes share (``wm_sim``: MuJoCo, ``wm_pybullet``: PyBullet).

A world node is the clock source. Each tick of a steady (wall) timer at
``control_hz * real_time_factor`` advances the world by one agent step (1 / control_hz s of
physics), toward where the joint trajectory being followed wants the arm at the end of that step
(:class:`wm_bringup.trajectory.TrajectoryFollower` on ``/arm_controller/joint_trajectory``, with
``cmd_timeout``; the suction valve on ``/suction/command``, std_msgs/Bool). It then publishes
``/clock``, ``/joint_states`` (with the ``suction_cup`` pseudo-joint), the vacuum switch,
``/camera/image_raw`` (rgb8) and ``/camera/camera_info``, all stamped with the simulated time.
Before the clock it publishes ``/arm_controller/reference`` (sensor_msgs/JointState, the six arm
joints): the follower's desired positions at the end of the step, as a
``joint_trajectory_controller`` reports its reference in ``~/controller_state`` (the safety
node times its commands from it, ``wm_core.safety.pacing``).

Episode control: ``/wm/sim/reset`` (std_msgs/Int64: the seed) starts a new episode, and
``/wm/sim/end_episode`` (std_msgs/Empty) ends the current one early (an evaluator does this when
the planner reports that it is done; the world keeps stepping). Scores go out as JSON
(std_msgs/String) on ``/wm/sim/episode`` every ``metrics_period_s`` while an episode runs and
once when it ends (the last message stands until the next reset): the world's
``episode_metrics()`` (objects, cleared, dropped, sim_time_s, safety events by kind) plus
``seed``, ``done``, ``end_reason`` (``table_empty``, ``time_limit``, ``ended`` or ``reset``;
null while it runs), ``started_s`` and ``stamp_s`` (the simulated times of the episode's start
and of the message), ``scene`` (the scene settings an evaluation report records),
``tool_to_nearest_object_m`` and ``rejected_trajectories``. Those scores use simulator ground
truth: they are for evaluation only and no planner subscribes to them, so the same driver
(:mod:`wm_bringup.episodes`) scores both worlds.

:class:`WorldNode` is all of that; a world node is a thin adapter that implements its hooks
over its engine. The inputs run in their own callback group, and ``_lock`` keeps them apart
from the step. This module imports no simulator.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

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
from wm_bringup.nodekit import RELIABLE_QOS, SENSOR_QOS, WmNode, guarded_transition
from wm_bringup.trajectory import TrajectoryFollower
from wm_bringup.world_events import WorldEventLog

if TYPE_CHECKING:
    from wm_core.robot import ArmKinematics


class WorldNode(WmNode):
    """A simulated world over ROS: the topics, the episodes and the tick; engines fill in hooks.

    Subclasses declare ``PARAMS`` (with ``WORLD_PARAMS``), ``build_config`` (a config with
    ``control_hz`` and ``tool_speed_limit``), ``release`` and the hooks below."""

    def __init__(self, node_name: str, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.names = arm_joint_names()
        self._lock = threading.Lock()  # the step vs. the input callbacks (another group)
        self.follower: TrajectoryFollower | None = None
        self.sim_ns, self.rejected = 0, 0
        self.episode: dict[str, Any] = {"seed": 0, "done": False, "end_reason": None}
        self.scene: dict[str, Any] = {}

    # ------------------------------------------------------------------ engine hooks
    def open_world(self, values: dict[str, Any]) -> ArmKinematics:
        """Make the world (from ``self.config`` and ``values``); return the arm's kinematics."""
        raise NotImplementedError

    def has_world(self) -> bool:
        """Whether the world is made (and not closed)."""
        raise NotImplementedError

    def reset_world(self, seed: int) -> None:
        """Start a new episode of the world with ``seed``."""
        raise NotImplementedError

    def step_world(self, q_target: np.ndarray, suction: bool) -> tuple[bool, bool, dict]:
        """One agent step toward ``q_target`` [6]: (terminated, truncated, the step's info)."""
        raise NotImplementedError

    def observe(self) -> dict[str, np.ndarray]:
        """The observation after the last step (joint_pos, joint_vel, suction, suction_held,
        image [H, W, 3] uint8)."""
        raise NotImplementedError

    def held(self) -> tuple[np.ndarray, bool]:
        """Where a ``cmd_timeout`` hold keeps the arm: (joint positions [6], suction on)."""
        raise NotImplementedError

    def q_cmd(self) -> np.ndarray:
        """[6] the joint positions the world was last commanded to."""
        raise NotImplementedError

    def camera(self) -> tuple[Any, int, int, Any]:
        """(K [3, 3], width, height, D [5]) for ``/camera/camera_info``."""
        raise NotImplementedError

    def scene_settings(self, values: dict[str, Any]) -> dict[str, Any]:
        """The scene settings an evaluation report records (the scores' ``scene``)."""
        raise NotImplementedError

    def episode_metrics(self) -> dict[str, Any]:
        """The world's scores of the current episode (ground truth)."""
        raise NotImplementedError

    def ground_truth(self) -> dict[str, np.ndarray]:
        """The last step's info: cleared, dropped [K], object_pos [K, 3], tool_pos [3]."""
        raise NotImplementedError

    def object_count(self) -> int:
        """How many objects the current episode has."""
        raise NotImplementedError

    def ready_line(self, values: dict[str, Any]) -> str:
        """The log line once the world is configured."""
        raise NotImplementedError

    def more_publishers(self) -> list:
        """The engine's own lifecycle publishers, made at configure (destroyed at cleanup)."""
        return []

    def after_sensors(self, stamp: Any, obs: dict[str, np.ndarray]) -> None:
        """Each tick, after the sensors went out (with their stamp and observation)."""

    # ------------------------------------------------------------------ lifecycle
    @guarded_transition
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        v = self.values()
        self.config = self.build_config(v)
        kin = self.open_world(v)
        self.events = WorldEventLog(kin, 1.0 / self.config.control_hz, self.config.tool_speed_limit)
        self.dt_ns = int(round(1e9 / self.config.control_hz))
        self.sim_ns = int(round(v["clock_start_s"] * 1e9))
        self.frames = {k: v[k] for k in ("base_frame", "camera_frame")}
        self.scene = self.scene_settings(v)
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
        self.pubs = [self.pub_clock, self.pub_js, self.pub_ref, self.pub_holding, self.pub_img]
        self.pubs += [self.pub_info, self.pub_episode, *self.more_publishers()]
        # Inputs in their own group: a step that takes a whole period must not starve them.
        inputs = MutuallyExclusiveCallbackGroup()
        self.subs = [
            self.create_subscription(t, topic, cb, RELIABLE_QOS, callback_group=inputs)
            for t, topic, cb in (
                (JointTrajectory, "/arm_controller/joint_trajectory", self._on_trajectory),
                (Bool, "/suction/command", self._on_suction),
                (Int64, "/wm/sim/reset", self._on_reset),
                (Empty, "/wm/sim/end_episode", self._on_end),
            )
        ]
        period = 1.0 / (self.config.control_hz * v["real_time_factor"])
        self.timer = self.create_timer(
            period, self._tick, clock=Clock(clock_type=ClockType.STEADY_TIME)
        )
        self.get_logger().info(self.ready_line(v))
        return TransitionCallbackReturn.SUCCESS

    @guarded_transition
    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.destroy_timer(self.timer)
        for s in self.subs:
            self.destroy_subscription(s)
        for p in self.pubs:
            self.destroy_lifecycle_publisher(p)
        self.release()
        return TransitionCallbackReturn.SUCCESS

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
            if self.follower is not None and self.has_world():
                self.follower.set_suction(bool(msg.data), self._now_s())

    def _on_reset(self, msg: Int64) -> None:
        if not 0 <= msg.data < 2**31:
            self.get_logger().warning(f"ignored reset: seed {msg.data} is outside [0, 2^31)")
            return
        with self._lock:
            if not self.has_world():
                return
            if not self.episode["done"]:
                self._end_episode("reset")
            self._reset_episode(int(msg.data))

    def _on_end(self, msg: Empty) -> None:
        with self._lock:
            if self.has_world() and not self.episode["done"]:
                self._end_episode("ended")

    def _reset_episode(self, seed: int) -> None:
        self.reset_world(seed)
        self.follower = TrajectoryFollower(self.q_cmd(), False, self.values()["cmd_timeout"])
        self.episode = {"seed": seed, "done": False, "end_reason": None, "started_s": self._now_s()}
        self.next_metrics_ns = self.sim_ns
        self.get_logger().info(f"episode with seed {seed}: {self.object_count()} objects")

    # ------------------------------------------------------------------ the step
    def _tick(self) -> None:
        with self._lock:
            if self.active and self.has_world():
                self._step()

    def _step(self) -> None:
        if self.follower.expired(self._now_s()):  # commands stopped: hold where the arm is
            self.get_logger().warning(
                f"no command for {self.follower.cmd_timeout_s} s after the last one ended "
                "(cmd_timeout): holding the arm where it is"
            )
            self.follower.hold(*self.held())
        q_target, suction = self.follower.sample((self.sim_ns + self.dt_ns) * 1e-9)
        q_from = self.q_cmd().copy()  # [6] the desired joints the tick starts from
        terminated, truncated, info = self.step_world(q_target, suction)
        event = self.events.describe(info, q_from, self.q_cmd(), self.follower, self._now_s())
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

    def _publish_sensors(self, stamp: Any) -> None:
        obs, f = self.observe(), self.frames
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
        im.data = np.ascontiguousarray(img).tobytes()
        self.publish(self.pub_img, im)
        k, width, height, d = self.camera()
        self.publish(self.pub_info, camera_info(k, width, height, d, stamp, f["camera_frame"]))
        self.after_sensors(stamp, obs)

    def _publish_episode(self, final: bool) -> None:
        if not self.has_world():
            return
        m = self.episode_metrics() | {
            "seed": self.episode["seed"],
            "done": final,
            "end_reason": self.episode["end_reason"],
            "started_s": self.episode["started_s"],
            "stamp_s": self._now_s(),
            "scene": self.scene,
        }
        info = self.ground_truth()  # scoring only
        left = ~(info["cleared"] | info["dropped"])  # [K]
        d = np.linalg.norm(info["object_pos"][left, :2] - info["tool_pos"][None, :2], axis=1)
        m["tool_to_nearest_object_m"] = float(d.min()) if d.size else 0.0
        m["rejected_trajectories"] = self.rejected
        self.publish(self.pub_episode, String(data=json.dumps(m)))
        self.next_metrics_ns = self.sim_ns + self.metrics_period_ns

    def diagnostics(self) -> tuple[int, str, dict[str, Any]]:
        level, msg, kv = super().diagnostics()
        if self.has_world():
            kv |= {"sim_time_s": f"{self._now_s():.2f}", "seed": self.episode["seed"]}
            kv |= {"rejected_trajectories": self.rejected}
        return level, msg, kv
