"""Typed, validated configuration of the latent MPC planner and its task layer."""

from __future__ import annotations

from dataclasses import dataclass

from wm_core.config import ConfigError, bounded, check_fields, check_range

OPTIMIZERS = ("cem", "mppi", "gradient")


@dataclass(frozen=True)
class CostWeights:
    """Weights of the composable cost terms (0 switches a term off)."""

    goal: float = 1.0
    """Tool distance to the subgoal, in cm^2, summed over the horizon."""
    suction: float = 20.0
    """Squared mismatch of the predicted suction state with the subgoal's."""
    latent_goal: float = 0.0
    """Mean squared latent distance of the final predicted latent to a goal latent (needs the
    full latent rollout; off by default)."""
    object_disturbance: float = 0.0
    """Predicted displacement (cm^2, summed over the horizon) of the objects other than the
    target, by the compact object model (``objects.pt`` in the model directory; off by
    default)."""
    joint_margin: float = 100.0
    """Squared intrusion (rad) into the margin before the joint position limits."""
    joint_velocity: float = 10.0
    """Squared excess joint speed (rad/s) over ``velocity_fraction`` of the limits."""
    joint_acceleration: float = 0.01
    """Squared joint acceleration (rad/s^2)."""
    tool_speed: float = 1000.0
    """Squared excess tool speed (m/s) over the configured limit."""
    collision: float = 1e4
    """Squared penetration (m) of arm capsules into the table and the bin walls."""
    keepout: float = 1e4
    """Squared penetration (m) of arm capsules into the keep-out boxes."""
    smoothness: float = 0.05
    """Squared change between consecutive actions (including the previous step's)."""

    def __post_init__(self) -> None:
        for name, v in vars(self).items():
            check_range(name, v, 0.0, 1e9)

    def guardrails_off(self) -> CostWeights:
        from dataclasses import replace

        return replace(
            self,
            joint_margin=0.0,
            joint_velocity=0.0,
            joint_acceleration=0.0,
            tool_speed=0.0,
            collision=0.0,
            keepout=0.0,
            smoothness=0.0,
            object_disturbance=0.0,
        )


@dataclass(frozen=True)
class PlannerConfig:
    optimizer: str = "cem"
    """"cem", "mppi" (warm-started from the previous solution) or "gradient" (Adam on the
    action sequence through the differentiable world model and costs)."""
    horizon: int = bounded(5, 1, 64, integer=True)
    """Planned actions H."""
    samples: int = bounded(256, 2, 65536, integer=True)
    """Candidate action sequences per iteration (cem, mppi); restarts for gradient: 8."""
    iterations: int = bounded(4, 1, 100, integer=True)
    """Optimiser iterations per control step (gradient: Adam steps)."""
    elite_frac: float = bounded(0.1, 0.001, 1.0)
    """CEM: fraction of samples refitted."""
    init_std: float = bounded(0.6, 1e-3, 2.0)
    """Initial sampling std of the actions (actions live in [-1, 1])."""
    mppi_temperature: float = 1.0
    """MPPI: softmax temperature on the cost (in cost units)."""
    grad_lr: float = 0.2
    """Gradient: Adam step size on the (tanh-parametrised) actions."""
    grad_restarts: int = 8
    """Gradient: parallel starts (the warm start plus random ones)."""
    velocity_fraction: float = 0.8
    """Guardrail: joint speeds above this fraction of the URDF limit are penalised."""
    tool_speed_limit: float = bounded(0.25, 0.01, 5.0)
    """Guardrail: tool speed limit (m/s)."""
    joint_margin: float = 0.15
    """Guardrail: margin (rad) before the joint limits where the cost starts."""
    control_dt: float = 0.1
    """Seconds per planned step."""
    weights: CostWeights = CostWeights()
    threads: int = bounded(1, 1, 256, integer=True)
    """torch CPU threads for planning (small batched ops run best on one thread, and it leaves
    the other cores to the simulator, camera and ROS)."""
    seed: int = bounded(0, 0, 2**31 - 1, integer=True)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer={self.optimizer!r} must be one of {OPTIMIZERS}")
        check_range("mppi_temperature", self.mppi_temperature, 1e-6, 1e6)
        check_range("grad_lr", self.grad_lr, 1e-5, 10.0)
        check_range("grad_restarts", self.grad_restarts, 1, 4096, integer=True)
        check_range("velocity_fraction", self.velocity_fraction, 0.05, 1.0)
        check_range("joint_margin", self.joint_margin, 0.0, 1.0)
        check_range("control_dt", self.control_dt, 1e-3, 10.0)
        if not isinstance(self.weights, CostWeights):
            raise ConfigError(f"weights must be CostWeights, got {type(self.weights).__name__}")


@dataclass(frozen=True)
class TaskConfig:
    """The hierarchical table-clearing layer (subgoals for the MPC)."""

    hover_z: float = 0.22
    """Tool height (m) above the table top for approach and transport."""
    release_z: float = 0.17
    """Tool height (m) above the table top at which an object is released over the bin."""
    detect_threshold: float = bounded(0.5, 0.01, 0.99)
    """Objectness probability above which the readout reports an object."""
    reach_tol: float = 0.012
    """Tool distance (m) to a subgoal that counts as reached."""
    lock_radius: float = 0.06
    """Within this xy distance (m) of the target the arm occludes it: the target is locked."""
    min_reach_radius: float = 0.28
    """Transport keeps the tool at least this far (m, in xy) from the arm's base axis: closer
    in, the arm folds over itself and the tool-down IK stops converging."""
    route_step: float = 0.10
    """Transport subgoals lead the tool by this much (m) along a path interpolated in polar
    coordinates around the base, so the swing goes around the base instead of past it."""
    grip_steps: int = 3
    release_steps: int = 4
    empty_checks: int = 3
    """Consecutive reads of an empty table (at ``detect_threshold``) before the task parks
    the arm to verify it (or, with ``verify_done`` off, reports done)."""
    verify_done: bool = True
    """Verify "done": park the arm out of the camera's view (``wm_core.plan.park``), wait for
    fresh frames, and re-read the table at ``verify_threshold``; done only if that is empty."""
    verify_threshold: float = bounded(0.2, 0.01, 0.99)
    """Objectness probability above which the verification read reports an object (at most
    ``detect_threshold``: the second look is the more sensitive one)."""
    verify_settle_steps: int = bounded(3, 0, 100, integer=True)
    """Steps waited at the park pose before the verification reads (the frames in flight
    when the arm arrived were taken while it moved)."""
    verify_reads: int = bounded(5, 1, 100, integer=True)
    """Frames read at the park pose; any of them seeing an object on the table resumes the
    picking."""
    park_tol: float = bounded(0.03, 0.001, 0.2)
    """Tool distance (m) to the park pose that counts as parked."""
    park_max_steps: int = bounded(100, 1, 10000, integer=True)
    """Steps allowed to reach the park pose; after them the verification reads start from
    wherever the arm is (logged), so an empty table always ends in bounded time."""
    max_attempts: int = 12
    """Pick attempts per episode before giving up."""
    surprise_threshold: float = bounded(6.0, 0.0, 1e6)
    """Surprise score above which the arm holds and replans."""
    surprise_hold_steps: int = 2
    """Steps held after a surprise."""

    def __post_init__(self) -> None:
        check_fields(self)
        check_range("hover_z", self.hover_z, 0.05, 0.55)
        check_range("release_z", self.release_z, 0.05, 0.55)
        check_range("reach_tol", self.reach_tol, 0.001, 0.1)
        check_range("lock_radius", self.lock_radius, 0.0, 0.5)
        check_range("min_reach_radius", self.min_reach_radius, 0.0, 0.5)
        check_range("route_step", self.route_step, 0.01, 1.0)
        check_range("grip_steps", self.grip_steps, 0, 100, integer=True)
        check_range("release_steps", self.release_steps, 0, 100, integer=True)
        check_range("empty_checks", self.empty_checks, 1, 100, integer=True)
        check_range("max_attempts", self.max_attempts, 1, 1000, integer=True)
        check_range("surprise_hold_steps", self.surprise_hold_steps, 0, 100, integer=True)
        if not isinstance(self.verify_done, bool):
            raise ConfigError(f"verify_done={self.verify_done!r} must be true or false")
        if self.verify_threshold > self.detect_threshold:
            raise ConfigError(
                f"verify_threshold={self.verify_threshold} must be in "
                f"[0.01, detect_threshold={self.detect_threshold}]"
            )
