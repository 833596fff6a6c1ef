"""``wm_planner``: latent + joint state -> a joint-trajectory command on ``/wm/plan_cmd``.

Per latent on ``/wm/latent`` (32FC1 Image, N x D, stamped with the camera image's stamp;
N rows and then the object readout's raw map when the readout reads a finer encoder stage,
which perception computes: ``wm_core.models.readout.pack_map``):

1. drop it and hold if it is older than ``max_latent_age_s`` (or the joint state is stale);
2. ``LatentMPCPolicy.act_latent``: surprise, object readout, task layer, latent MPC -> the
   tool action ``[dx, dy, dz, suction]`` in [-1, 1] (the policy never sees ground truth);
3. the action -> joint targets with ``wm_core.robot.action.joint_target`` (the one mapping the
   simulator uses too), from the last command the arm was sent (``arm_command_topic``, the
   safety node's output; in shadow mode the real profile points it at
   ``/wm/shadow/joint_trajectory``, what the arm would have been sent), or from the measured
   joints when there is none, it is stale or the arm did not follow it;
   ``trajectory_points > 1`` chains the next planned actions;
4. publish a ``JointTrajectory`` (the ``joint_names`` (default: the URDF's) + the
   ``suction_cup`` pseudo-joint, points
   ``control_dt`` apart, header stamp = the source image stamp so the safety node can check
   the end-to-end age), the planned tool path as markers, the readout's detections, the target
   and the task status on ``/wm/detections``, the surprise score and diagnostics (with the
   plan's cost breakdown, ``cost_<term>``); the message layouts are ``wm_bringup.vizmsgs``'s.

A hold is a one-point command at the measured joints with the suction unchanged.

**Camera info** is checked against the cell file's camera (``wm_planner.camera_info``); with
``use_camera_info_intrinsics: true`` it replaces the cell's for the object readout, applied
between two plans.

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
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float32
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray
from wm_bringup.msgs import NonFiniteError, joint_state_arrays, make_trajectory, parse_trajectory
from wm_bringup.nodekit import (
    RELIABLE_QOS,
    SENSOR_QOS,
    StartupError,
    WmNode,
    guarded_transition,
    run_node,
)
from wm_bringup.vizmsgs import cost_values, detection_markers, plan_markers

from wm_core.robot import ArmKinematics
from wm_core.robot.action import basis_joints
from wm_planner.camera_info import judge_camera_info
from wm_planner.commands import decode_latent, split_latent, to_joints
from wm_planner.config import PARAMS, PlannerNodeConfig, node_config


class PlannerNode(WmNode):
    PARAMS = PARAMS

    def __init__(self, node_name: str = "wm_planner", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.names = self.config.joint_names
        self.kin = ArmKinematics(base_pose=self.config.cell.arm.T_world_base)
        self.policy = None
        self.q: np.ndarray | None = None  # [6] measured joints
        self.suction_meas: bool | None = None
        self.suction_cmd = False
        self.js_time: Time | None = None
        self.q_sent: np.ndarray | None = None  # [6] the last command the arm was sent
        self.last_action: np.ndarray | None = None  # [4] the action of the last plan
        self.sent_time: Time | None = None
        self.stats: dict[str, Any] = {"plans": 0, "holds": 0, "stale_latents": 0, "bad": 0}
        self.stats["out_of_order"] = 0
        self.last_latent_ns: int | None = None  # stamp of the newest latent planned on
        self.stats |= {"plan_ms": 0.0, "surprise": 0.0, "phase": "", "done": False}
        self.stats |= {"camera_info": "none yet", "readout_camera": "cell file"}
        self._info_key: tuple | None = None  # (size, K) of the last camera_info looked at
        self._info_warning = ""
        self._plan_lock = threading.Lock()
        self._transition_waiting = threading.Event()  # latents yield to a waiting transition
        # set under the plan lock by activate/deactivate; read by the plan instead of the
        # lifecycle state, which a transition in progress holds (lock-order deadlock otherwise)
        self._planning_enabled = False

    def build_config(self, values: dict[str, Any]) -> PlannerNodeConfig:
        super().build_config(values)
        return node_config(values)

    # ------------------------------------------------------------------ lifecycle
    @guarded_transition
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        from wm_core.deploy.backends import BackendUnavailableError
        from wm_core.models.checkpoint import CheckpointError
        from wm_core.plan.policy import DEFAULT_MODEL, LatentMPCPolicy

        self.config = cfg = self.build_config(self.values())
        model_dir = Path(cfg.model_dir) if cfg.model_dir else DEFAULT_MODEL
        try:
            self.kin = ArmKinematics(base_pose=cfg.cell.arm.T_world_base)
            self.policy = LatentMPCPolicy(
                cfg.cell,
                model_dir=model_dir,
                world_model=cfg.world_model,
                guardrails=cfg.guardrails,
                planner_config=cfg.planner,
                task_config=cfg.task,
                backend=cfg.backend,
            )
        except (CheckpointError, BackendUnavailableError, ValueError) as exc:
            raise StartupError(str(exc)) from None
        self.want_shape = (self.policy.model.cfg.grid**2, self.policy.model.cfg.latent_dim)
        self._info_key, self._info_warning = None, ""
        self.stats["camera_info"], self.stats["readout_camera"] = "none yet", "cell file"
        self.world_frame = self.values()["world_frame"]
        arm_topic = self.values()["arm_command_topic"]
        self.pub_cmd = self.create_lifecycle_publisher(
            JointTrajectory, "/wm/plan_cmd", RELIABLE_QOS
        )
        self.pub_markers = self.create_lifecycle_publisher(
            MarkerArray, "/wm/plan_markers", RELIABLE_QOS
        )
        self.pub_surprise = self.create_lifecycle_publisher(Float32, "/wm/surprise", RELIABLE_QOS)
        self.pub_detections = self.create_lifecycle_publisher(
            MarkerArray, "/wm/detections", RELIABLE_QOS
        )
        # each its own group: joint states, the arm's commands and camera info keep flowing
        # while a plan is being computed
        self.subs = [
            self.create_subscription(
                msg_type, topic, callback, qos, callback_group=MutuallyExclusiveCallbackGroup()
            )
            for msg_type, topic, callback, qos in (
                (Image, "/wm/latent", self._on_latent, SENSOR_QOS),
                (JointState, "/joint_states", self._on_joints, RELIABLE_QOS),
                (JointTrajectory, arm_topic, self._on_arm_command, RELIABLE_QOS),
                (CameraInfo, "/camera/camera_info", self._on_camera_info, SENSOR_QOS),
            )
        ]
        self.get_logger().info(
            f"planner ready: {cfg.planner.optimizer} {cfg.planner.samples}x"
            f"{cfg.planner.iterations}, horizon {cfg.planner.horizon}, model {model_dir}, "
            f"backend {self.policy.settings['backend']}"
        )
        return TransitionCallbackReturn.SUCCESS

    @guarded_transition
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._transition():
            self.policy.reset(0)
            self.last_latent_ns = None
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
            for p in (self.pub_cmd, self.pub_markers, self.pub_surprise, self.pub_detections):
                self.destroy_lifecycle_publisher(p)
            self.release()
        return TransitionCallbackReturn.SUCCESS

    def release(self) -> None:
        self.policy = None

    # ------------------------------------------------------------------ inputs
    def _on_joints(self, msg: JointState) -> None:
        try:
            self.q, self.suction_meas = joint_state_arrays(msg, self.names)
        except NonFiniteError as exc:
            self.js_time = None  # stop planning at once: the arm's state is unknown
            self.get_logger().warning(f"not planning: {exc}", throttle_duration_sec=2.0)
            return
        except ValueError as exc:
            self.get_logger().warning(f"ignored joint state: {exc}", throttle_duration_sec=2.0)
            return
        self.js_time = self.get_clock().now()

    def _on_arm_command(self, msg: JointTrajectory) -> None:
        """The command the arm was sent (after the safety filter): its first point is the
        commanded basis of the next action (``wm_core.robot.action``)."""
        try:
            traj = parse_trajectory(msg, self.names)
        except ValueError:
            return  # the safety node's own output; the safety node reports what it sends
        if len(traj.times):
            self.q_sent, self.sent_time = traj.positions[0].copy(), self.get_clock().now()

    def _on_camera_info(self, msg: CameraInfo) -> None:
        """Compare the published intrinsics with the cell's (warn, throttled, when they
        disagree) and, with ``use_camera_info_intrinsics``, use them for the readout priors."""
        key = (msg.width, msg.height, tuple(msg.k))
        if key != self._info_key:
            self._info_key = key
            self._camera_info_changed(msg)
        if self._info_warning:
            self.get_logger().warning(self._info_warning, throttle_duration_sec=30.0)

    def _camera_info_changed(self, msg: CameraInfo) -> None:
        cfg = self.config
        v = judge_camera_info(
            msg, cfg.cell, cfg.use_camera_info_intrinsics, cfg.camera_info_tolerance
        )
        self.stats |= v.stats
        self._info_warning = v.warning
        if v.cell is None:
            return
        from wm_core.train.readout import priors_for

        with self._plan_lock:  # between two plans
            if self.policy is None:
                return
            priors = priors_for(self.policy.model, v.cell, self.policy.readout.source)
            self.policy.readout.priors.copy_(torch.as_tensor(priors))  # [G, G, 3]
        self.stats["readout_camera"] = "camera_info"
        self.get_logger().info(f"object readout now uses the camera_info intrinsics: {v.text}")

    def _age(self, t: Time) -> float:
        """Seconds since ``t``, a receipt time on our clock; inf when the clock has jumped back
        past it (a restarted simulator): how old that input is can no longer be told."""
        age = (self.get_clock().now() - t).nanoseconds * 1e-9
        return age if age >= 0.0 else float("inf")

    def _stamp_age(self, t: Time) -> float:
        """Seconds since a header stamp: slightly ahead of our clock is fresh (the clock
        message in flight); more than ``max_latent_age_s`` ahead is from before a backwards
        clock jump, and stale."""
        age = (self.get_clock().now() - t).nanoseconds * 1e-9
        return float("inf") if age < -self.config.max_latent_age_s else max(0.0, age)

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
        stamp = Time.from_msg(msg.header.stamp, clock_type=self.get_clock().clock_type)
        age = self._stamp_age(stamp)
        if age > cfg.max_latent_age_s:
            self.stats["stale_latents"] += 1
            self.get_logger().warning(
                f"dropped a latent {age:.2f} s old (max {cfg.max_latent_age_s} s): holding",
                throttle_duration_sec=2.0,
            )
            self._publish_hold(self.get_clock().now().to_msg())
            return
        last = self.last_latent_ns
        if last is not None and last - cfg.max_latent_age_s * 1e9 < stamp.nanoseconds <= last:
            # out of order (not newer than the latent planned last): acting on it would step
            # back in time; a much older stamp is a restarted clock, handled by the age check
            self.stats["out_of_order"] += 1
            self.get_logger().warning(
                "dropped a latent that is not newer than the last one", throttle_duration_sec=2.0
            )
            return
        try:
            grid = None if self.policy.readout_stage is None else self.policy.readout.grid
            z, raw = split_latent(decode_latent(msg), self.want_shape, grid)  # [N, D], map
        except ValueError as exc:
            self.stats["bad"] += 1
            self.get_logger().warning(f"dropped latent: {exc}", throttle_duration_sec=2.0)
            return
        self.last_latent_ns = stamp.nanoseconds
        suction = self.suction_meas if self.suction_meas is not None else self.suction_cmd
        t0 = time.perf_counter()
        z_t = torch.from_numpy(z)[None]  # [1, N, D]
        raw_t = None if raw is None else torch.from_numpy(np.ascontiguousarray(raw))
        a = self.policy.act_latent(z_t, self.q, [float(suction)], raw_t)  # [4]
        self.last_action = a
        info = self.policy.last_info
        plan = info.get("plan")
        actions = [a] if plan is None else [a, *plan.actions[1 : cfg.trajectory_points]]
        qs, on, held = to_joints(  # [P, 6], [P]
            self.kin, cfg.cell, cfg.max_tool_step, self.q, self._sent(), np.asarray(actions)
        )
        self.stats["holds"] += int(held)
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
        self._publish_view(info, msg.header.stamp)

    def _publish_view(self, info: dict, stamp) -> None:
        """What the step shows (``wm_bringup.vizmsgs``): plan markers, detections, target,
        status, and the plan's cost terms for the diagnostics."""
        plan, frame = info.get("plan"), self.world_frame
        if plan is not None:
            self.publish(self.pub_markers, plan_markers(plan.tool_path, stamp, frame))
            self.stats |= cost_values(plan.breakdown, plan.cost)
        view = detection_markers(
            info.get("detections", np.zeros((0, 4))),
            info.get("target"),
            str(info.get("phase", "")),
            self.stats["surprise"],
            str(info.get("hold", "")),
            stamp,
            frame,
            status_xyz=(*self.config.cell.base_xy, self.config.cell.table.top_z + 0.6),
        )
        self.publish(self.pub_detections, view)

    # ------------------------------------------------------------------ outputs
    def _sent(self) -> np.ndarray | None:
        """The last command the arm was sent [6], when it is fresh; else None."""
        if self.q_sent is None or self._age(self.sent_time) > self.config.max_state_age_s:
            return None  # the arm was not sent anything lately: start from where it is
        return self.q_sent

    def _publish_hold(self, stamp) -> None:
        """Hold where the arm is going: the last command it was sent (fresh, and followed),
        else the measured joints. Holding at a measured state that is up to a step old would
        pull a moving arm back."""
        self.stats["holds"] += 1
        q = basis_joints(self.kin, self.q, self._sent())  # [6]
        cmd = make_trajectory(
            self.names, q[None], [self.config.planner.control_dt], [self.suction_cmd]
        )
        cmd.header.stamp = stamp
        self.publish(self.pub_cmd, cmd)

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
