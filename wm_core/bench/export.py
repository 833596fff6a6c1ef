"""``wm bench export``: the inference backends side by side, in one run.

- CPU: torch against onnxruntime (FP32, one thread, as the stack runs them): the encoder at
  batch 1, the predictor at the planner's candidate batch, the proprioception rollout (the
  planner's hot path), and a whole plan at the ROS stack's budget; max abs error of each.
- CUDA, when torch sees a GPU: torch FP32 against FP16 (latency and max abs error against FP32),
  onnxruntime's CUDA provider where it is installed, and TensorRT FP16 where TensorRT imports;
  the device is named. Each missing piece is listed under ``skipped`` with the reason.

Latencies are medians in milliseconds; every ratio is against torch on the same device in the
same run (the machines are noisy). The ONNX export is the model directory's ``onnx/`` when it
matches the checkpoint, else a fresh export into a temporary directory.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch

from wm_core.bench.model import _times_ms
from wm_core.cell import sim_cell
from wm_core.deploy.backends import BackendUnavailableError, make_backend
from wm_core.deploy.config import BackendConfig
from wm_core.deploy.onnx_export import example_inputs, export_onnx
from wm_core.plan.config import PlannerConfig
from wm_core.plan.costs import Goal
from wm_core.plan.planner import LatentMPC
from wm_core.plan.policy import DEFAULT_MODEL
from wm_core.robot import ArmKinematics

log = logging.getLogger(__name__)

STACK_BUDGET = {"samples": 128, "iterations": 3}  # stack.yaml's planner budget
CONTROL_PERIOD_MS = 100.0  # the stack's 10 Hz


def _inputs(model, batch: int) -> dict:
    """Seeded inputs of the three graphs (CPU float32 tensors)."""
    return {g: example_inputs(model, g, batch) for g in ("encoder", "predictor", "proprio")}


def _calls(model, x: dict, horizon: int) -> dict:
    """name -> zero-argument call of the model's verb, returning tensors."""
    pr, pp = x["predictor"], x["proprio"]
    acts = pp["a"][:, None].expand(-1, horizon, -1).contiguous()  # [B, H, 4]
    z0 = pr["z"][:1]  # [1, N, D]
    return {
        "encoder_b1": lambda: model.encode(x["encoder"]["images"][:1]),
        "predictor": lambda: model.predict(pr["z"], pr["p"], pr["a"]),
        "proprio_rollout": lambda: model.rollout_proprio(z0, pp["p"], acts),
    }


def _err(a, b) -> float:
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    return max(float((x.float() - y.float()).abs().max()) for x, y in zip(a, b, strict=True))


def _plan_ms(model, repeats: int) -> float:
    cell = sim_cell()
    pcfg = dataclasses.replace(PlannerConfig(), **STACK_BUDGET)
    mpc = LatentMPC(model, pcfg, cell)
    q = np.array(cell.arm.home_q)
    tool = ArmKinematics(base_pose=cell.arm.T_world_base).tool_position(q)
    p = torch.tensor(np.concatenate([q, tool, [0.0]]), dtype=torch.float32)[None]  # [1, 10]
    z = torch.randn(1, model.cfg.grid**2, model.cfg.latent_dim, generator=torch.Generator())
    goal = Goal(torch.tensor([0.45, 0.0, 0.1]), 1.0)
    return float(np.median(_times_ms(lambda: mpc.plan(z, p, goal), repeats, warmup=2)))


def _compare(models: dict, x: dict, horizon: int, repeats: int, sync=lambda: None) -> dict:
    """Latency of each verb per backend, and max abs error against the first (the reference)."""
    ref_name = next(iter(models))
    out: dict = {}
    refs = {k: f() for k, f in _calls(models[ref_name], x, horizon).items()}
    for name, model in models.items():
        for verb, fn in _calls(model, x, horizon).items():
            with torch.no_grad():
                ms = float(np.median(_times_ms(fn, repeats, sync=sync)))
                err = _err(fn(), refs[verb])
            out.setdefault(verb, {})[name] = {"ms": round(ms, 4), "max_abs_err": err}
    for row in out.values():
        base = row[ref_name]["ms"]
        for r in row.values():
            r["vs_" + ref_name] = round(r["ms"] / base, 3) if base > 0 else None
    return out


def bench_export(model_dir: Path = DEFAULT_MODEL, repeats: int = 50) -> dict:
    model_dir = Path(model_dir)
    pcfg = PlannerConfig()
    batch = STACK_BUDGET["samples"]
    skipped: dict[str, str] = {}
    result: dict = {
        "host": platform.node(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "model_dir": str(model_dir),
        "batch": batch,
        "horizon": pcfg.horizon,
        "stack_budget": STACK_BUDGET,
        "control_period_ms": CONTROL_PERIOD_MS,
    }
    with tempfile.TemporaryDirectory() as tmp:
        onnx_dir = model_dir / "onnx"
        try:
            make_backend(model_dir, BackendConfig(backend="onnxruntime")).close()
        except BackendUnavailableError as exc:
            log.info("exporting a fresh ONNX copy (%s)", exc)
            onnx_dir = Path(tmp)
            export_onnx(model_dir / "model.pt", onnx_dir)
        result["onnx_dir"] = str(onnx_dir) if onnx_dir != Path(tmp) else "fresh export (temp)"
        cpu = {
            "torch": make_backend(model_dir, BackendConfig(threads=1)),
            "onnxruntime": make_backend(
                model_dir, BackendConfig(backend="onnxruntime", onnx_dir=str(onnx_dir))
            ),
        }
        import onnxruntime as ort

        result["onnxruntime"] = ort.__version__
        x = _inputs(cpu["torch"], batch)
        torch.set_num_threads(1)
        result["cpu_fp32"] = _compare(cpu, x, pcfg.horizon, repeats)
        result["cpu_fp32"]["plan_stack_budget"] = {
            name: {"ms": round(_plan_ms(m, max(5, repeats // 5)), 3)} for name, m in cpu.items()
        }
        plan = result["cpu_fp32"]["plan_stack_budget"]
        for r in plan.values():
            r["vs_torch"] = round(r["ms"] / plan["torch"]["ms"], 3)
            r["fits_control_period"] = r["ms"] < CONTROL_PERIOD_MS
        result["cuda"] = _bench_cuda(model_dir, onnx_dir, x, pcfg.horizon, repeats, skipped)
    result["skipped"] = skipped
    return result


def _bench_cuda(
    model_dir: Path, onnx_dir: Path, x: dict, horizon: int, repeats: int, skipped: dict
) -> dict | None:
    if not torch.cuda.is_available():
        skipped["cuda"] = "torch sees no CUDA GPU on this machine"
        skipped["tensorrt"] = "no CUDA GPU"
        return None
    sync = torch.cuda.synchronize
    out: dict = {"device": torch.cuda.get_device_name(0), "cuda": torch.version.cuda}
    models = {
        "torch_fp32": make_backend(model_dir, BackendConfig(device="cuda", precision="fp32")),
        "torch_fp16": make_backend(model_dir, BackendConfig(device="cuda", precision="fp16")),
    }
    for name, cfg in (
        (
            "onnxruntime_cuda",
            BackendConfig(backend="onnxruntime", device="cuda", onnx_dir=str(onnx_dir)),
        ),
        (
            "tensorrt_fp16",
            BackendConfig(
                backend="tensorrt",
                onnx_dir=str(onnx_dir),
                engine_dir=str(Path(onnx_dir) / "engines"),
            ),
        ),
    ):
        try:
            models[name] = make_backend(model_dir, cfg)
        except BackendUnavailableError as exc:
            skipped[name] = str(exc)
    out["fp32_vs"] = _compare(models, x, horizon, repeats, sync=sync)
    out["plan_stack_budget"] = {
        name: {"ms": round(_plan_ms(m, max(5, repeats // 5)), 3)} for name, m in models.items()
    }
    return out
