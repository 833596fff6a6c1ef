"""One control step as the visualisations need it: what the policy saw, believed and did.

``wm eval`` fills records from the policy's ``last_info`` and the safety filter's result;
``wm up sim --episodes`` fills them from the stack's topics (``/wm/detections``,
``/wm/plan_markers``, ``/wm/safety/verdict``, ``/joint_states``, ``/diagnostics``). Both then
hand them to :mod:`wm_core.viz.annotate` and :mod:`wm_core.viz.rerun_log`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wm_core.safety.filter import STATUSES as FILTER_STATUSES

VERDICTS = ("ok", "clamped", "rejected", "held")
"""The safety filter's verdict on a step, as drawn: a hold of any kind (stale input, NaN,
e-stop) is ``held``."""
NO_VERDICT = ""
"""A step whose verdict is not known (the ROS stack sent no verdict for that frame)."""


def verdict_of(status: str) -> str:
    """A safety filter status (``wm_core.safety.filter.STATUSES``) or a verdict -> a verdict."""
    if status in VERDICTS:
        return status
    if status in FILTER_STATUSES:
        return "held"
    raise ValueError(f"filter status {status!r} must be one of {FILTER_STATUSES + VERDICTS}")


def _array(name: str, value, width: int) -> np.ndarray:
    """``value`` as a float array [K, width]; ValueError naming the field otherwise."""
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"StepRecord.{name} must be numbers, got {type(value).__name__}") from None
    if a.size % width or (a.ndim > 1 and a.shape[-1] != width):
        raise ValueError(f"StepRecord.{name} must have {width} numbers per row, got {a.shape}")
    a = a.reshape(-1, width)
    if not np.isfinite(a).all():
        raise ValueError(f"StepRecord.{name} holds NaN or inf")
    return a


@dataclass(frozen=True)
class StepRecord:
    """One control step. Positions are world coordinates (m)."""

    step: int
    """Index of the step in the episode (0 = first command)."""
    t: float
    """Seconds since the episode started (simulated time)."""
    joint_pos: np.ndarray
    """[6] measured joint positions the step started from (rad)."""
    image: np.ndarray | None = None
    """[h, w, 3] uint8: the policy's camera image (what it planned on), or None."""
    render: np.ndarray | None = None
    """[H, W, 3] uint8: a higher-resolution render of the same camera, for people only."""
    detections: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    """[M, 4] (x, y, z, objectness) from the object readout."""
    target: np.ndarray | None = None
    """[3] the object the task layer chose (its centre estimate), or None."""
    subgoal: np.ndarray | None = None
    """[3] the tool subgoal the planner was given, or None."""
    tool_path: np.ndarray | None = None
    """[H, 3] the planned tool path of the executed plan (None: no plan this step)."""
    phase: str = ""
    """The task phase (choose, above, descend, grip, lift, carry, lower, release, done)."""
    surprise: float = 0.0
    """The surprise score of this step's observation against the last prediction."""
    hold: str = ""
    """Why the policy held this step ("surprise", "bad image", ...), or "" if it did not."""
    verdict: str = NO_VERDICT
    """The safety filter's verdict on the step's command (one of VERDICTS, or "")."""
    costs: dict[str, float] = field(default_factory=dict)
    """Weighted cost terms of the executed plan (and "total")."""

    def __post_init__(self) -> None:
        if self.step < 0:
            raise ValueError(f"StepRecord.step={self.step} must be >= 0")
        if not np.isfinite(self.t):
            raise ValueError(f"StepRecord.t={self.t} must be finite")
        q = _array("joint_pos", self.joint_pos, 6)
        if q.shape != (1, 6):
            raise ValueError(f"StepRecord.joint_pos must be 6 numbers, got {np.shape(q)}")
        object.__setattr__(self, "joint_pos", q[0])
        object.__setattr__(self, "detections", _array("detections", self.detections, 4))
        for name in ("target", "subgoal"):
            v = getattr(self, name)
            if v is not None:
                a = _array(name, v, 3)
                if a.shape != (1, 3):
                    raise ValueError(f"StepRecord.{name} must be 3 numbers, got {np.shape(v)}")
                object.__setattr__(self, name, a[0])
        if self.tool_path is not None:
            object.__setattr__(self, "tool_path", _array("tool_path", self.tool_path, 3))
        for name in ("image", "render"):
            img = getattr(self, name)
            if img is not None and (img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8):
                raise ValueError(
                    f"StepRecord.{name} must be an HxWx3 uint8 image, got "
                    f"{img.dtype} {list(img.shape)}"
                )
        if self.verdict not in (*VERDICTS, NO_VERDICT):
            raise ValueError(f"StepRecord.verdict={self.verdict!r} must be one of {VERDICTS}")
        if not np.isfinite(self.surprise):
            object.__setattr__(self, "surprise", 0.0)


def record_from_policy(
    step: int,
    t: float,
    obs: dict,
    info: dict,
    status: str,
    render: np.ndarray | None = None,
) -> StepRecord:
    """A step of ``wm eval``: the observation the policy acted on, its ``last_info`` (see
    ``wm_core.plan.policy.LatentMPCPolicy.act_latent``; other policies leave it empty) and the
    safety filter's status. Only references are taken: no copy, no drawing."""
    plan = info.get("plan") if "hold" not in info else None
    costs: dict[str, float] = {}
    if plan is not None:
        costs = dict(plan.breakdown) | {"total": float(plan.cost)}
    return StepRecord(
        step=step,
        t=t,
        joint_pos=obs["joint_pos"],
        image=obs.get("image"),
        render=render,
        detections=info.get("detections", np.zeros((0, 4))),
        target=info.get("target"),
        subgoal=info.get("subgoal"),
        tool_path=None if plan is None else plan.tool_path,
        phase=str(info.get("phase", "")),
        surprise=float(info.get("surprise", 0.0)),
        hold=str(info.get("hold", "")),
        verdict=verdict_of(status),
        costs=costs,
    )
