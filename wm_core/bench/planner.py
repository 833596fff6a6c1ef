"""``wm bench planner``: plan latency and rollout throughput per optimiser and sample budget.

Budgets: small, the ROS stack's (``stack.yaml``), default and large, plus a V-JEPA-2-AC-like
setting (CEM, 800 samples, 10 iterations). Every latency is also given as a ratio to the
default CEM setting measured in the same run (the machines are noisy; ratios travel better
than milliseconds). Uses the shipped model when present; the timing does not depend on the
weights.

What predicting objects costs inside the planning loop (``object_prediction``): one batch of
256 candidates x 5 steps rolled out three ways (proprioception only, the planner's default;
plus the compact object model over 6 objects, ``wm_core.models.objects``; the full latent grid
of the conv predictor), and the stack's CEM budget planned with each (``cem_stack`` is the
first; ``cem_stack_objects`` adds the object disturbance cost; ``cem_stack_full_latent`` rolls
the whole latent out for a latent goal), each as a ratio to the full latent rollout.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform

import numpy as np
import torch

from wm_core.bench.model import _times_ms
from wm_core.cell import sim_cell
from wm_core.models import ModelConfig, WorldModel
from wm_core.models.objects import ObjectDynamics
from wm_core.plan.config import CostWeights, PlannerConfig
from wm_core.plan.costs import Goal
from wm_core.plan.planner import LatentMPC
from wm_core.plan.policy import DEFAULT_MODEL
from wm_core.train.objects import load_objects

log = logging.getLogger(__name__)

BUDGETS = {
    "small": {"samples": 64, "iterations": 2},
    "stack": {"samples": 128, "iterations": 3},  # the ROS stack's budget (stack.yaml)
    "default": {},
    "large": {"samples": 1024, "iterations": 6},
}
VJEPA2_AC_LIKE = {"optimizer": "cem", "samples": 800, "iterations": 10}
VJEPA2_AC_PUBLISHED_S_PER_ACTION = 16.0  # RTX 4090, from the V-JEPA 2 paper (not our hardware)


def _model() -> tuple[WorldModel, str]:
    path = DEFAULT_MODEL / "model.pt"
    if path.is_file():
        from wm_core.models.checkpoint import load_checkpoint

        return load_checkpoint(path), str(path)
    torch.manual_seed(0)
    return WorldModel(ModelConfig()).eval(), "untrained default ModelConfig (no shipped model)"


def _objects() -> tuple[ObjectDynamics, str]:
    path = DEFAULT_MODEL / "objects.pt"
    if path.is_file():
        return load_objects(path), str(path)
    torch.manual_seed(0)
    return ObjectDynamics().eval(), "untrained ObjectDynamicsConfig (no shipped object model)"


BATCH, HORIZON, OBJECTS = 256, 5, 6
STACK = {"optimizer": "cem", **BUDGETS["stack"]}
OBJECT_SETTINGS = {
    "cem_stack_objects": {**STACK, "weights": CostWeights(object_disturbance=10.0)},
    "cem_stack_full_latent": {**STACK, "weights": CostWeights(latent_goal=1.0)},
}


def _object_prediction(model: WorldModel, objects: ObjectDynamics, z, p, cell, repeats) -> dict:
    """One candidate batch [B=256, H=5] rolled out three ways, in ms; ratios to the full one."""
    torch.set_num_threads(PlannerConfig().threads)  # the planner's, as in its loop
    a = torch.rand(BATCH, HORIZON, 4, generator=torch.Generator().manual_seed(0)) * 2 - 1
    pb = p.expand(BATCH, -1)  # [B, 10]
    obj0 = _table_objects(cell)  # [K, 3]
    table_z = cell.table.top_z
    with torch.inference_mode():
        ways = {
            "proprio_only": lambda: model.rollout_proprio(z, pb, a),  # [B, H, 10]
            "proprio_and_objects": lambda: objects.rollout(
                obj0, p, model.rollout_proprio(z, pb, a), table_z
            ),  # [B, H, K, 3]
            "full_latent": lambda: model.rollout(z.expand(BATCH, -1, -1), pb, a),
        }
        ms = {
            k: float(
                np.median(_times_ms(f, max(3, repeats // 4) if k == "full_latent" else repeats))
            )
            for k, f in ways.items()
        }
    return {
        "candidates": BATCH,
        "horizon": HORIZON,
        "objects": OBJECTS,
        **{f"{k}_rollout_ms": round(v, 3) for k, v in ms.items()},
        **{
            f"full_latent_over_{k}": round(ms["full_latent"] / max(v, 1e-6), 1)
            for k, v in ms.items()
            if k != "full_latent"
        },
    }


def _table_objects(cell) -> torch.Tensor:
    """OBJECTS positions [K, 3] spread over the workspace, on the table."""
    lo, hi = np.asarray(cell.workspace_lo), np.asarray(cell.workspace_hi)
    rng = np.random.default_rng(0)
    xy = lo[:2] + rng.random((OBJECTS, 2)) * (hi[:2] - lo[:2])
    z = np.full((OBJECTS, 1), cell.table.top_z + 0.02)
    return torch.tensor(np.concatenate([xy, z], 1), dtype=torch.float32)


def bench_planner(repeats: int = 20, only: tuple[str, ...] | None = None) -> dict:
    """All settings (or the names in ``only``, which must include "cem_default", the
    baseline of the ratios)."""
    model, source = _model()
    objects, objects_source = _objects()
    cfg = model.cfg
    z = torch.randn(1, cfg.grid * cfg.grid, cfg.latent_dim)  # [1, N, D]
    from wm_core.robot import ArmKinematics

    cell = sim_cell()
    q = np.array(cell.arm.home_q)
    tool = ArmKinematics().tool_position(q)
    p = torch.tensor(np.concatenate([q, tool, [0.0]]), dtype=torch.float32)[None]  # [1, 10]
    goal = Goal(torch.tensor([0.45, 0.0, 0.1]), 1.0, latent=z[0], objects=_table_objects(cell))
    settings = {
        f"{opt}_{name}": {"optimizer": opt, **budget}
        for opt in ("cem", "mppi", "gradient")
        for name, budget in BUDGETS.items()
    }
    settings["vjepa2_ac_like"] = VJEPA2_AC_LIKE
    settings |= OBJECT_SETTINGS
    if only is not None:
        settings = {k: v for k, v in settings.items() if k in only or k == "cem_default"}
    results = {}
    for name, over in settings.items():
        pcfg = dataclasses.replace(PlannerConfig(), **over)
        mpc = LatentMPC(model, pcfg, cell, objects=objects)
        plan = mpc.plan(z, p, goal)  # warm-up; also gives the rollout count
        n = max(3, repeats // 4) if pcfg.samples * pcfg.iterations > 4000 else repeats
        t = _times_ms(lambda mpc=mpc: mpc.plan(z, p, goal), n, warmup=1)
        p50 = float(np.percentile(t, 50))
        results[name] = {
            "optimizer": pcfg.optimizer,
            "samples": pcfg.samples if pcfg.optimizer != "gradient" else pcfg.grad_restarts,
            "iterations": pcfg.iterations,
            "horizon": pcfg.horizon,
            "rollouts_per_plan": plan.rollouts,
            "plan_ms_p50": round(p50, 3),
            "plan_ms_p99": round(float(np.percentile(t, 99)), 3),
            "rollouts_per_s": round(plan.rollouts / (p50 / 1e3), 1),
            "model_steps_per_s": round(plan.rollouts * pcfg.horizon / (p50 / 1e3), 1),
            "max_hz": round(1e3 / p50, 1),
        }
    base = results["cem_default"]["plan_ms_p50"]
    for r in results.values():
        r["latency_vs_cem_default"] = round(r["plan_ms_p50"] / base, 3)
    v = results.get("vjepa2_ac_like", results["cem_default"])
    full = results.get("cem_stack_full_latent")
    for name in ("cem_stack", "cem_stack_objects"):
        if full is not None and name in results:
            results[name]["full_latent_plan_over_this"] = round(
                full["plan_ms_p50"] / results[name]["plan_ms_p50"], 1
            )
    return {
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "torch_threads": PlannerConfig().threads,
        "model": source,
        "object_model": objects_source,
        "rollout": "proprioception fast path (scene latent held) unless the setting says "
        "otherwise; see wm_core/models/world_model and wm_core/models/objects",
        "results": results,
        "object_prediction": _object_prediction(model, objects, z, p, cell, repeats),
        "vjepa2_ac_like_vs_default_ratio": v["latency_vs_cem_default"],
        "vjepa2_ac_published_s_per_action_rtx4090": VJEPA2_AC_PUBLISHED_S_PER_ACTION,
        "published_over_ours_vjepa2_like_setting": round(
            VJEPA2_AC_PUBLISHED_S_PER_ACTION * 1e3 / v["plan_ms_p50"], 1
        ),
        "note": "the published figure is another model on another machine (a GPU); the ratio "
        "is for scale only",
    }
