"""``wm_planner``: latent + joint state -> a joint-trajectory command on ``/wm/plan_cmd``.

Per latent on ``/wm/latent`` (32FC1 Image, N x D, stamped with the camera image's stamp):

1. drop it and hold if it is older than ``max_latent_age_s`` (or the joint state is stale);
2. ``LatentMPCPolicy.act_latent``: surprise, object readout, task layer, latent MPC -> the
   tool action ``[dx, dy, dz, suction]`` in [-1, 1] (the policy never sees ground truth);
3. tool target = forward kinematics of the measured joints + ``a[:3] * max_tool_step``,
   clipped to the workspace box, then IK with the tool pointing down (seeded at the measured
   joints); ``trajectory_points > 1`` chains the next planned actions the same way;
4. publish a ``JointTrajectory`` (URDF joint names + the ``suction_cup`` pseudo-joint, points
   ``control_dt`` apart, header stamp = the source image stamp so the safety node can check
   the end-to-end age), the planned tool path as markers, the surprise score and diagnostics.

A hold is a one-point command at the measured joints with the suction unchanged.

Activation starts a new task: the policy's episode state (task phase, attempts, ``done``,
surprise history) is reset, so a lifecycle manager (e.g. the runner's episode driver) starts the
next table-clearing episode with ``deactivate`` then ``activate``; nothing is reloaded.

Callback groups: the latent (planning) and the joint states each have their own group, so the
lifecycle services and the diagnostics timer (the default group) are answered while a plan
runs. Sharing one mutually exclusive group with the latent would starve them under a
multi-threaded executor, which serves the always-waiting next latent first. A lock keeps a
transition and a plan from overlapping: a transition waits for the plan in progress.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import Point
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.time import Time
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import Marker, MarkerArray
from wm_bringup.msgs import arm_joint_names, joint_state_arrays, make_trajectory
from wm_bringup.nodekit import (
    RELIABLE_QOS,
    SENSOR_QOS,
    Param,
    StartupError,
    WmNode,
    boxes_from_flat,
    guarded_transition,
    run_node,
)

from wm_core.config import ConfigError
from wm_core.plan.config import OPTIMIZERS, PlannerConfig, TaskConfig
from wm_core.robot import ArmKinematics
from wm_core.sim.config import LAYOUT, SceneConfig

DEFAULT_KEEPOUT = [x for box in SceneConfig().keepout_boxes for corner in box for x in corner]
WORLD_MODELS = ("learned", "copy-last", "random", "generative")


@dataclass(frozen=True)
class PlannerNodeConfig:
    scene: SceneConfig
    planner: PlannerConfig
    task: TaskConfig
    model_dir: str
    world_model: str
    guardrails: bool
    max_latent_age_s: float
    max_state_age_s: float
    trajectory_points: int


def decode_latent(msg: Image) -> np.ndarray:
    """32FC1 Image -> latent [N, D] float32; ValueError naming what is wrong."""
    if msg.encoding != "32FC1":
        raise ValueError(f"latent encoding {msg.encoding!r}, expected 32FC1")
    if msg.step != 4 * msg.width or len(msg.data) != msg.height * msg.step:
        raise ValueError(
            f"latent {msg.height}x{msg.width}: step {msg.step}, {len(msg.data)} bytes do not fit"
        )
    dtype = ">f4" if msg.is_bigendian else "<f4"
    z = np.frombuffer(msg.data, dtype).reshape(msg.height, msg.width).astype(np.float32)
    if not np.isfinite(z).all():
        raise ValueError(f"latent {msg.height}x{msg.width} holds NaN or inf")
    return z


class PlannerNode(WmNode):
    PARAMS = (
        Param("model_dir", "", "Model directory (model.pt + readout.pt); empty: models/default."),
        Param("world_model", "learned", "World model or ablation.", choices=WORLD_MODELS),
        Param("guardrails", True, "Guardrail cost terms on (the hard filter is always on)."),
        Param("optimizer", "cem", "Planner optimiser.", choices=OPTIMIZERS),
        Param("horizon", 5, "Planned actions H.", 1, 64),
        Param("samples", 256, "Candidate sequences per iteration.", 2, 65536),
        Param("iterations", 4, "Optimiser iterations per step.", 1, 100),
        Param("elite_frac", 0.1, "CEM elite fraction.", 0.001, 1.0),
        Param("init_std", 0.6, "Initial sampling std of the actions.", 0.001, 2.0),
        Param("threads", 1, "torch CPU threads for planning.", 1, 256),
        Param("seed", 0, "Planner RNG seed.", 0, 2**31 - 1),
        Param("tool_speed_limit", 0.25, "Guardrail tool speed (m/s).", 0.01, 5.0),
        Param("control_hz", 10.0, "Planned steps per second.", 1.0, 100.0),
        Param("max_tool_step", 0.018, "Tool displacement (m) of a unit action.", 0.001, 0.05),
        Param("keepout_boxes", DEFAULT_KEEPOUT, "Keep-out boxes, 6 numbers each (lo, hi xyz)."),
        Param("detect_threshold", 0.5, "Objectness above which an object is seen.", 0.01, 0.99),
        Param("surprise_threshold", 6.0, "Surprise score that makes the arm hold.", 0.0, 1e6),
        Param("max_latent_age_s", 0.5, "Older latents are dropped (hold).", 0.01, 60.0),
        Param("max_state_age_s", 0.5, "Older joint states make the planner hold.", 0.01, 60.0),
        Param("trajectory_points", 1, "Planned steps sent per command.", 1, 64),
        Param("world_frame", "world", "frame_id of the plan markers."),
    )

    def __init__(self, node_name: str = "wm_planner", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.names = arm_joint_names()
        self.kin = ArmKinematics()
        self.ws_lo, self.ws_hi = np.array(LAYOUT.workspace_lo), np.array(LAYOUT.workspace_hi)
        self.policy = None
        self.q: np.ndarray | None = None  # [6] measured joints
        self.suction_meas: bool | None = None
        self.suction_cmd = False
        self.js_time: Time | None = None
        self.stats: dict[str, Any] = {"plans": 0, "holds": 0, "stale_latents": 0, "bad": 0}
        self.stats |= {"plan_ms": 0.0, "surprise": 0.0, "phase": "", "done": False}
        self._plan_lock = threading.Lock()
        self._transition_waiting = threading.Event()  # latents yield to a waiting transition
        # set under the plan lock by activate/deactivate; read by the plan instead of the
        # lifecycle state, which a transition in progress holds (lock-order deadlock otherwise)
        self._planning_enabled = False

    def build_config(self, values: dict[str, Any]) -> PlannerNodeConfig:
        super().build_config(values)
        control_dt = 1.0 / values["control_hz"]
        planner = PlannerConfig(
            optimizer=values["optimizer"],
            horizon=values["horizon"],
            samples=values["samples"],
            iterations=values["iterations"],
            elite_frac=values["elite_frac"],
            init_std=values["init_std"],
            threads=values["threads"],
            seed=values["seed"],
            tool_speed_limit=values["tool_speed_limit"],
            control_dt=control_dt,
        )
        if values["trajectory_points"] > planner.horizon:
            raise ConfigError(
                f"trajectory_points={values['trajectory_points']} must be <= "
                f"horizon={planner.horizon}"
            )
        return PlannerNodeConfig(
            scene=SceneConfig(
                control_hz=values["control_hz"],
                max_tool_step=values["max_tool_step"],
                tool_speed_limit=values["tool_speed_limit"],
                keepout_boxes=boxes_from_flat("keepout_boxes", values["keepout_boxes"]),
            ),
            planner=planner,
            task=TaskConfig(
                detect_threshold=values["detect_threshold"],
                surprise_threshold=values["surprise_threshold"],
            ),
            model_dir=values["model_dir"],
            world_model=values["world_model"],
            guardrails=values["guardrails"],
            max_latent_age_s=values["max_latent_age_s"],
            max_state_age_s=values["max_state_age_s"],
            trajectory_points=values["trajectory_points"],
        )

    # ------------------------------------------------------------------ lifecycle
    @guarded_transition
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        from wm_core.models.checkpoint import CheckpointError
        from wm_core.plan.policy import DEFAULT_MODEL, LatentMPCPolicy

        self.config = cfg = self.build_config(self.values())
        model_dir = Path(cfg.model_dir) if cfg.model_dir else DEFAULT_MODEL
        try:
            self.policy = LatentMPCPolicy(
                cfg.scene,
                model_dir=model_dir,
                world_model=cfg.world_model,
                guardrails=cfg.guardrails,
                planner_config=cfg.planner,
                task_config=cfg.task,
            )
        except CheckpointError as exc:
            raise StartupError(str(exc)) from None
        self.want_shape = (self.policy.model.cfg.grid**2, self.policy.model.cfg.latent_dim)
        self.world_frame = self.values()["world_frame"]
        self.pub_cmd = self.create_lifecycle_publisher(
            JointTrajectory, "/wm/plan_cmd", RELIABLE_QOS
        )
        self.pub_markers = self.create_lifecycle_publisher(
            MarkerArray, "/wm/plan_markers", RELIABLE_QOS
        )
        self.pub_surprise = self.create_lifecycle_publisher(Float32, "/wm/surprise", RELIABLE_QOS)
        self.subs = [
            self.create_subscription(
                Image,
                "/wm/latent",
                self._on_latent,
                SENSOR_QOS,
                callback_group=MutuallyExclusiveCallbackGroup(),
            ),
            # its own group: joint states keep flowing while a plan is being computed
            self.create_subscription(
                JointState,
                "/joint_states",
                self._on_joints,
                RELIABLE_QOS,
                callback_group=MutuallyExclusiveCallbackGroup(),
            ),
        ]
        self.get_logger().info(
            f"planner ready: {cfg.planner.optimizer} {cfg.planner.samples}x"
            f"{cfg.planner.iterations}, horizon {cfg.planner.horizon}, model {model_dir}"
        )
        return TransitionCallbackReturn.SUCCESS

    @guarded_transition
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._transition():
            self.policy.reset(0)
            self.stats["done"], self.stats["phase"] = False, ""
            self._planning_enabled = True
            return super().on_activate(state)

    @guarded_transition
    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._transition():
            self._planning_enabled = False
            return super().on_deactivate(state)

    @guarded_transition
    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._transition():
            self._planning_enabled = False
            for s in self.subs:
                self.destroy_subscription(s)
            for p in (self.pub_cmd, self.pub_markers, self.pub_surprise):
                self.destroy_lifecycle_publisher(p)
            self.release()
        return TransitionCallbackReturn.SUCCESS

    def release(self) -> None:
        self.policy = None

    # ------------------------------------------------------------------ inputs
    def _on_joints(self, msg: JointState) -> None:
        try:
            self.q, self.suction_meas = joint_state_arrays(msg, self.names)
        except ValueError as exc:
            self.get_logger().warning(f"ignored joint state: {exc}", throttle_duration_sec=2.0)
            return
        self.js_time = self.get_clock().now()

    def _age(self, stamp: Time) -> float:
        return max(0.0, (self.get_clock().now() - stamp).nanoseconds * 1e-9)

    @contextlib.contextmanager
    def _transition(self) -> Iterator[None]:
        """Hold the plan lock for a lifecycle transition. The lock is not fair, so a waiting
        transition first tells new latents to stand aside; it then waits for the plan in
        progress only."""
        self._transition_waiting.set()
        try:
            with self._plan_lock:
                yield
        finally:
            self._transition_waiting.clear()

    def _on_latent(self, msg: Image) -> None:
        if self._transition_waiting.is_set():
            return  # a transition is waiting for the lock; this latent would starve it
        with self._plan_lock:
            self._plan(msg)

    def _plan(self, msg: Image) -> None:
        if not self._planning_enabled or self.policy is None:
            return
        cfg = self.config
        state_age = self._age(self.js_time) if self.js_time is not None else float("inf")
        if state_age > cfg.max_state_age_s:
            self.get_logger().warning(
                f"no fresh joint state ({state_age:.2f} s old): not planning",
                throttle_duration_sec=2.0,
            )
            return
        age = self._age(Time.from_msg(msg.header.stamp, clock_type=self.get_clock().clock_type))
        if age > cfg.max_latent_age_s:
            self.stats["stale_latents"] += 1
            self.get_logger().warning(
                f"dropped a latent {age:.2f} s old (max {cfg.max_latent_age_s} s): holding",
                throttle_duration_sec=2.0,
            )
            self._publish_hold(self.get_clock().now().to_msg())
            return
        try:
            z = decode_latent(msg)  # [N, D]
            if z.shape != self.want_shape:
                raise ValueError(f"latent shape {z.shape}, the model needs {self.want_shape}")
        except ValueError as exc:
            self.stats["bad"] += 1
            self.get_logger().warning(f"dropped latent: {exc}", throttle_duration_sec=2.0)
            return
        suction = self.suction_meas if self.suction_meas is not None else self.suction_cmd
        t0 = time.perf_counter()
        a = self.policy.act_latent(torch.from_numpy(z)[None], self.q, [float(suction)])  # [4]
        info = self.policy.last_info
        plan = info.get("plan")
        actions = [a] if plan is None else [a, *plan.actions[1 : cfg.trajectory_points]]
        qs, on = self._to_joints(np.asarray(actions, float))  # [P, 6], [P]
        self.suction_cmd = bool(on[0])
        times = [(k + 1) * cfg.planner.control_dt for k in range(len(qs))]
        cmd = make_trajectory(self.names, qs, times, on)
        cmd.header.stamp = msg.header.stamp
        self.publish(self.pub_cmd, cmd)
        self.stats["plan_ms"] = (time.perf_counter() - t0) * 1e3
        self.stats["plans"] += 1
        self.stats["surprise"] = float(info.get("surprise", 0.0))
        self.stats["phase"] = str(info.get("phase", info.get("hold", "")))
        self.stats["done"] = bool(self.policy.done)
        self.publish(self.pub_surprise, Float32(data=self.stats["surprise"]))
        if plan is not None:
            self.publish(self.pub_markers, self._markers(plan.tool_path, msg.header.stamp))

    # ------------------------------------------------------------------ outputs
    def _to_joints(self, actions: np.ndarray) -> tuple[np.ndarray, list[bool]]:
        """Tool actions [P, 4] -> joint targets [P', 6] and suction [P'] (P' <= P: the chain
        stops at the first IK failure; a failure at the first step is a hold)."""
        q, tool = self.q.copy(), self.kin.tool_position(self.q)
        qs, on = [], []
        for a in np.clip(actions, -1.0, 1.0):
            target = np.clip(tool + a[:3] * self.config.scene.max_tool_step, self.ws_lo, self.ws_hi)
            ik = self.kin.ik_tool_down(target, q)
            if not ik.converged:
                break
            q, tool = ik.q, target
            qs.append(q)
            on.append(bool(a[3] > 0))
        if not qs:
            self.stats["holds"] += 1
            return self.q[None].copy(), [bool(actions[0, 3] > 0)]
        return np.array(qs), on

    def _publish_hold(self, stamp) -> None:
        self.stats["holds"] += 1
        cmd = make_trajectory(
            self.names, self.q[None], [self.config.planner.control_dt], [self.suction_cmd]
        )
        cmd.header.stamp = stamp
        self.publish(self.pub_cmd, cmd)

    def _markers(self, path: np.ndarray, stamp) -> MarkerArray:
        """The planned tool path [H, 3] as a line strip and points."""
        out = MarkerArray()
        for mid, kind in ((0, Marker.LINE_STRIP), (1, Marker.SPHERE_LIST)):
            m = Marker(ns="wm_plan", id=mid, type=kind, action=Marker.ADD)
            m.header.stamp, m.header.frame_id = stamp, self.world_frame
            m.pose.orientation.w = 1.0
            m.scale.x = m.scale.y = m.scale.z = 0.006 if kind == Marker.LINE_STRIP else 0.012
            m.color.r, m.color.g, m.color.b, m.color.a = 0.1, 0.8, 0.2, 1.0
            m.points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in path]
            out.markers.append(m)
        return out

    def diagnostics(self):
        level, message, kv = super().diagnostics()
        if self.active and self.stats["stale_latents"]:
            level = DiagnosticStatus.WARN
        kv |= {k: (f"{v:.2f}" if isinstance(v, float) else v) for k, v in self.stats.items()}
        return level, message, kv


NODE_CLASS = PlannerNode


def main(args: list[str] | None = None) -> None:
    raise SystemExit(run_node(PlannerNode, sys.argv if args is None else args))


if __name__ == "__main__":
    main()
