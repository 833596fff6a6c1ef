"""wm bench export: torch against onnxruntime in one run, with errors, ratios and the plan at
the stack's budget; a GPU section or the reason it was skipped."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("onnxruntime")


def test_bench_export_compares_the_backends_in_one_run(tiny_exported):
    import torch

    from wm_core.bench.export import bench_export

    r = bench_export(tiny_exported, repeats=3)
    json.dumps(r)  # the CLI prints it as JSON
    cpu = r["cpu_fp32"]
    for verb in ("encoder_b1", "predictor", "proprio_rollout"):
        row = cpu[verb]
        assert row["torch"]["max_abs_err"] == 0.0 and row["torch"]["vs_torch"] == 1.0
        assert 0 <= row["onnxruntime"]["max_abs_err"] <= 1e-3
        assert row["onnxruntime"]["ms"] > 0 and row["onnxruntime"]["vs_torch"] > 0
    plan = cpu["plan_stack_budget"]
    assert set(plan) == {"torch", "onnxruntime"} and all(v["ms"] > 0 for v in plan.values())
    assert r["stack_budget"] == {"samples": 128, "iterations": 3} and r["batch"] == 128
    if torch.cuda.is_available():
        assert r["cuda"]["device"] and "torch_fp16" in r["cuda"]["fp32_vs"]["predictor"]
    else:
        assert r["cuda"] is None and "no CUDA GPU" in r["skipped"]["cuda"]
