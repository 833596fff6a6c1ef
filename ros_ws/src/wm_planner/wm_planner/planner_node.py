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

**Camera info.** The object readout maps each latent patch onto the table through the cell
file's camera (``wm_core.train.readout.priors_for``). ``/camera/camera_info`` is compared with
it, scaled to the published image size: when fx, fy (relative) or cx, cy (as a fraction of
the image size) or the aspect ratio disagree by more than ``camera_info_tolerance``, a
throttled one-line warning says by how much. With ``use_camera_info_intrinsics: true`` the
published size and K (with the cell's pose) replace the cell's for the readout priors, applied
between two plans whenever they change; without it the cell file's stay.

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
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float32
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray
from wm_bringup.msgs import NonFiniteError, joint_state_arrays, make_trajectory, parse_trajectory
from wm_bringup.nodekit import (
    BACKEND_PARAMS,
    CELL_FILE,
    JOINT_NAMES,
    RELIABLE_QOS,
    SENSOR_QOS,
    Param,
    StartupError,
    WmNode,
    backend_config_of,
    cell_of,
    guarded_transition,
    joint_names_of,
    run_node,
)
from wm_bringup.vizmsgs import cost_values, detection_markers, plan_markers

from wm_core.cell import Camera, Workcell
from wm_core.config import ConfigError
from wm_core.deploy.config import BackendConfig
from wm_core.models.readout import unpack_map
from wm_core.plan.config import OPTIMIZERS, PlannerConfig, TaskConfig
from wm_core.robot import ArmKinematics
from wm_core.robot.action import basis_joints, joint_target
from wm_core.robot.limits import CONTROL_HZ, MAX_TOOL_STEP

WORLD_MODELS = ("learned", "copy-last", "random", "generative")


@dataclass(frozen=True)
class PlannerNodeConfig:
    cell: Workcell
    max_tool_step: float
    planner: PlannerConfig
    task: TaskConfig
    model_dir: str
    world_model: str
    backend: BackendConfig
    guardrails: bool
    max_latent_age_s: float
    max_state_age_s: float
    trajectory_points: int
    joint_names: tuple[str, ...]
    use_camera_info_intrinsics: bool
    camera_info_tolerance: float


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


def camera_from_info(msg: CameraInfo, cell_camera: Camera) -> Camera:
    """The camera a CameraInfo describes (size, K, plumb_bob D), at the cell camera's pose.
    ConfigError (one line) when it is not a usable pinhole (an uncalibrated driver publishes
    zeros)."""
    k = [float(x) for x in msg.k]
    d = [float(x) for x in msg.d]
    if msg.distortion_model == "plumb_bob" and len(d) in (4, 5):
        dist = (*d, 0.0)[:5] if len(d) == 4 else tuple(d)
    else:  # the readout priors use no distortion; keep the cell's
        dist = cell_camera.D
    return Camera(
        width=int(msg.width),
        height=int(msg.height),
        K=tuple(k),
        T_world_cam=cell_camera.T_world_cam,
        D=dist,
        frame_id=msg.header.frame_id or cell_camera.frame_id,
    )


def intrinsics_disagreement(published: Camera, cell_camera: Camera) -> tuple[float, str]:
    """How far the published intrinsics are from the cell's, scaled to the published size:
    (the largest of |dfx|/fx, |dfy|/fy, |dcx|/width, |dcy|/height and the aspect ratio's
    relative change, a one-line description)."""
    w, h = published.width, published.height
    kc, kp = cell_camera.k_for(w, h), published.k_matrix
    aspect = abs((w / h) / (cell_camera.width / cell_camera.height) - 1.0)
    errs = {
        "fx": abs(kp[0, 0] - kc[0, 0]) / kc[0, 0],
        "fy": abs(kp[1, 1] - kc[1, 1]) / kc[1, 1],
        "cx": abs(kp[0, 2] - kc[0, 2]) / w,
        "cy": abs(kp[1, 2] - kc[1, 2]) / h,
        "aspect": aspect,
    }
    text = (
        f"{w}x{h} fx {kp[0, 0]:.1f} fy {kp[1, 1]:.1f} cx {kp[0, 2]:.1f} cy {kp[1, 2]:.1f}; "
        f"the cell's {cell_camera.width}x{cell_camera.height} camera at that size: "
        f"fx {kc[0, 0]:.1f} fy {kc[1, 1]:.1f} cx {kc[0, 2]:.1f} cy {kc[1, 2]:.1f} "
        f"(worst: {max(errs, key=errs.get)} {max(errs.values()):.1%})"
    )
    return max(errs.values()), text


class PlannerNode(WmNode):
    PARAMS = (
        Param("model_dir", "", "Model directory (model.pt + readout.pt); empty: models/default."),
        Param("world_model", "learned", "World model or ablation.", choices=WORLD_MODELS),
        *BACKEND_PARAMS,
        Param("guardrails", True, "Guardrail cost terms on (the hard filter is always on)."),
        Param("optimizer", "cem", "Planner optimiser.", choices=OPTIMIZERS),
        *(
            Param.of(PlannerConfig, name)
            for name in (
                "horizon",
                "samples",
                "iterations",
                "elite_frac",
                "init_std",
                "threads",
                "seed",
                "tool_speed_limit",
            )
        ),
        Param("control_hz", 10.0, "Planned steps per second.", *CONTROL_HZ),
        Param("max_tool_step", 0.018, "Tool displacement (m) of a unit action.", *MAX_TOOL_STEP),
        CELL_FILE,
        Param.of(TaskConfig, "detect_threshold"),
        Param.of(TaskConfig, "surprise_threshold"),
        Param.of(TaskConfig, "verify_done"),
        Param.of(TaskConfig, "verify_threshold"),
        Param("max_latent_age_s", 0.5, "Older latents are dropped (hold).", 0.01, 60.0),
        Param("max_state_age_s", 0.5, "Older joint states make the planner hold.", 0.01, 60.0),
        Param(
            "arm_command_topic",
            "/arm_controller/joint_trajectory",
            "What the arm is sent (the safety node's output): the basis of the next action.",
        ),
        Param("trajectory_points", 1, "Planned steps sent per command.", 1, 64),
        Param("world_frame", "world", "frame_id of the plan markers."),
        JOINT_NAMES,
        Param(
            "use_camera_info_intrinsics",
            False,
            "Use the size and K published on /camera/camera_info (with the cell's camera pose) "
            "for the object readout, instead of the cell file's camera.",
        ),
        Param(
            "camera_info_tolerance",
            0.02,
            "camera_info disagreeing with the cell's camera by more than this (fx, fy relative; "
            "cx, cy as a fraction of the image size; aspect ratio) is logged.",
            0.0,
            1.0,
        ),
    )

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
            cell=cell_of(values),
            max_tool_step=values["max_tool_step"],
            planner=planner,
            task=TaskConfig(
                detect_threshold=values["detect_threshold"],
                surprise_threshold=values["surprise_threshold"],
                verify_done=values["verify_done"],
                verify_threshold=values["verify_threshold"],
            ),
            model_dir=values["model_dir"],
            world_model=values["world_model"],
            backend=backend_config_of(values, values["threads"]),
            guardrails=values["guardrails"],
            max_latent_age_s=values["max_latent_age_s"],
            max_state_age_s=values["max_state_age_s"],
            trajectory_points=values["trajectory_points"],
            joint_names=joint_names_of(values),
            use_camera_info_intrinsics=values["use_camera_info_intrinsics"],
            camera_info_tolerance=values["camera_info_tolerance"],
        )

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
            self.create_subscription(
                JointTrajectory,
                self.values()["arm_command_topic"],
                self._on_arm_command,
                RELIABLE_QOS,
                callback_group=MutuallyExclusiveCallbackGroup(),
            ),
            self.create_subscription(
                CameraInfo,
                "/camera/camera_info",
                self._on_camera_info,
                SENSOR_QOS,
                callback_group=MutuallyExclusiveCallbackGroup(),
            ),
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
        cfg, self._info_warning = self.config, ""
        try:
            published = camera_from_info(msg, cfg.cell.camera)
        except ConfigError as exc:
            self.stats["camera_info"] = "unusable"
            self._info_warning = f"camera_info ignored: {exc}"
            return
        err, text = intrinsics_disagreement(published, cfg.cell.camera)
        agrees = err <= cfg.camera_info_tolerance
        self.stats["camera_info"] = f"{'agrees' if agrees else 'disagrees'} ({err:.1%})"
        if not cfg.use_camera_info_intrinsics:
            if not agrees:
                self._info_warning = (
                    f"camera_info disagrees with the cell file's camera: {text}; the readout "
                    "uses the cell file's (use_camera_info_intrinsics: true to use camera_info)"
                )
            return
        from wm_core.train.readout import priors_for

        try:
            cell = cfg.cell.with_camera(published)
        except ConfigError as exc:
            self.stats["readout_camera"] = "cell file (camera_info unusable)"
            self._info_warning = f"camera_info not used: {exc}"
            return
        with self._plan_lock:  # between two plans
            if self.policy is None:
                return
            priors = priors_for(self.policy.model, cell, self.policy.readout.source)  # [G, G, 3]
            self.policy.readout.priors.copy_(torch.as_tensor(priors))
        self.stats["readout_camera"] = "camera_info"
        self.get_logger().info(f"object readout now uses the camera_info intrinsics: {text}")

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

    def _split(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Decoded rows -> latent [N, D] and, when the readout reads a finer encoder stage, its
        raw map [1, 4, G', G'] (perception's); ValueError when the shape is not this model's."""
        n, d = self.want_shape
        if rows.shape[1] != d:
            raise ValueError(f"latent shape {rows.shape}, the model needs {self.want_shape}")
        if self.policy.readout_stage is None:
            if rows.shape[0] != n:
                raise ValueError(f"latent shape {rows.shape}, the model needs {self.want_shape}")
            return rows, None
        return unpack_map(rows, n, self.policy.readout.grid)

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
            z, raw = self._split(decode_latent(msg))  # [N, D], [1, 4, G', G'] or None
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
    def _to_joints(self, actions: np.ndarray) -> tuple[np.ndarray, list[bool]]:
        """Tool actions [P, 4] -> joint targets [P', 6] and suction [P'] (P' <= P: the chain
        stops at the first IK failure; a failure at the first step is a hold)."""
        cell, step = self.config.cell, self.config.max_tool_step
        sent = self.q_sent
        if sent is not None and self._age(self.sent_time) > self.config.max_state_age_s:
            sent = None  # the arm was not sent anything lately: start from where it is
        q = basis_joints(self.kin, self.q, sent)  # [6] the commanded basis, or measured
        lo, hi = np.array(cell.workspace_lo), np.array(cell.workspace_hi)
        qs, on = [], []
        for a in actions:
            t = joint_target(self.kin, a, q, lo, hi, step)
            if not t.converged:
                break
            q = t.q
            qs.append(q)
            on.append(bool(a[3] > 0))
        if not qs:
            self.stats["holds"] += 1
            return self.q[None].copy(), [bool(actions[0, 3] > 0)]
        return np.array(qs), on

    def _publish_hold(self, stamp) -> None:
        """Hold where the arm is going: the last command it was sent (fresh, and followed),
        else the measured joints. Holding at a measured state that is up to a step old would
        pull a moving arm back."""
        self.stats["holds"] += 1
        sent = self.q_sent
        if sent is not None and self._age(self.sent_time) > self.config.max_state_age_s:
            sent = None
        q = basis_joints(self.kin, self.q, sent)  # [6]
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
