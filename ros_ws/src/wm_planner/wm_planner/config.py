"""The planner node's parameters (generated from the wm_core config dataclasses where one
holds the field) and their mapping onto those configs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wm_bringup.nodekit import (
    BACKEND_PARAMS,
    CELL_FILE,
    JOINT_NAMES,
    Param,
    backend_config_of,
    cell_of,
    joint_names_of,
)

from wm_core.cell import Workcell
from wm_core.config import ConfigError
from wm_core.deploy.config import BackendConfig
from wm_core.plan.config import OPTIMIZERS, CostWeights, PlannerConfig, TaskConfig
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
    Param.of(CostWeights, "object_disturbance"),
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


def node_config(values: dict[str, Any]) -> PlannerNodeConfig:
    """The parameter values (already checked one by one) -> the node's configs; ConfigError
    (one line) when they do not fit together."""
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
        weights=CostWeights(object_disturbance=values["object_disturbance"]),
    )
    if values["trajectory_points"] > planner.horizon:
        raise ConfigError(
            f"trajectory_points={values['trajectory_points']} must be <= horizon={planner.horizon}"
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
