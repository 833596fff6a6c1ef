"""One backend interface: torch and onnxruntime agree; a named backend never falls back;
auto falls back and says so; the gradient planner refuses a backend it cannot differentiate."""

from __future__ import annotations

import importlib.util
import logging
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from wm_core.cell import sim_cell  # noqa: E402
from wm_core.config import ConfigError  # noqa: E402
from wm_core.deploy.backends import (  # noqa: E402
    BackendUnavailableError,
    backend_name,
    make_backend,
)
from wm_core.deploy.config import BackendConfig  # noqa: E402
from wm_core.deploy.onnx_export import PARITY_TOL  # noqa: E402
from wm_core.plan.config import PlannerConfig  # noqa: E402
from wm_core.plan.costs import Goal  # noqa: E402
from wm_core.plan.planner import LatentMPC  # noqa: E402

ORT = BackendConfig(backend="onnxruntime")
HAS_TRT = importlib.util.find_spec("tensorrt") is not None


def test_onnxruntime_matches_torch_on_every_verb_at_the_planner_batch(tiny_exported):
    ref, ort = make_backend(tiny_exported), make_backend(tiny_exported, ORT)
    assert backend_name(ref) == "torch" and backend_name(ort) == "onnxruntime"
    g = torch.Generator().manual_seed(3)
    img = torch.rand(1, 3, 64, 64, generator=g)  # [1, 3, S, S]
    with torch.no_grad():
        z = ref.encode(img)  # [1, N, D]
        assert (ort.encode(img) - z).abs().max() <= PARITY_TOL
        b, h = 128, 5
        zb, p = z.expand(b, -1, -1), torch.rand(b, 10, generator=g)  # [B, N, D], [B, 10]
        acts = torch.rand(b, h, 4, generator=g) * 2 - 1  # [B, H, 4]
        for want, got in zip(ref.rollout(zb, p, acts), ort.rollout(zb, p, acts), strict=True):
            assert got.shape == want.shape and (got - want).abs().max() <= 10 * PARITY_TOL
        want, got = ref.rollout_proprio(z, p, acts), ort.rollout_proprio(z, p, acts)
        assert got.shape == (b, h, 10) and (got - want).abs().max() <= 10 * PARITY_TOL


def test_the_planner_plans_the_same_through_onnxruntime(tiny_exported):
    cell = sim_cell()
    z = torch.randn(1, 16, 8, generator=torch.Generator().manual_seed(1))  # [1, N, D]
    p = torch.zeros(1, 10)
    p[0, 6:9] = torch.tensor([0.4, 0.0, 0.2])
    goal = Goal(torch.tensor([0.45, 0.1, 0.1]), 1.0)
    pcfg = PlannerConfig(samples=64, iterations=2)
    plans = [
        LatentMPC(make_backend(tiny_exported, c), pcfg, cell).plan(z, p, goal)
        for c in (BackendConfig(), ORT)
    ]
    np.testing.assert_allclose(plans[1].actions, plans[0].actions, atol=1e-4)
    assert plans[1].rollouts == plans[0].rollouts


def test_the_gradient_planner_refuses_a_backend_it_cannot_differentiate(tiny_exported):
    with pytest.raises(ValueError, match="optimizer='gradient'.*'onnxruntime'"):
        LatentMPC(make_backend(tiny_exported, ORT), PlannerConfig(optimizer="gradient"))


def test_a_stale_or_missing_export_is_refused_with_the_fix(tiny_exported, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(tiny_exported, d)
    with open(d / "model.pt", "ab") as f:  # the checkpoint changed after the export
        f.write(b"\0")
    with pytest.raises(
        BackendUnavailableError, match="exported from another checkpoint.*wm export"
    ):
        make_backend(d, ORT)
    shutil.rmtree(d / "onnx")
    with pytest.raises(BackendUnavailableError, match="manifest.json does not exist"):
        make_backend(d, ORT)


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_a_named_backend_never_falls_back(tiny_exported):
    with pytest.raises(BackendUnavailableError, match="TensorRT is not installed"):
        make_backend(tiny_exported, BackendConfig(backend="tensorrt"))
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailableError, match="no CUDA GPU"):
            make_backend(tiny_exported, BackendConfig(device="cuda"))


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_auto_falls_back_and_logs_what_it_chose(tiny_exported, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="wm_core.deploy.backends")
    assert backend_name(make_backend(tiny_exported, BackendConfig(backend="auto"))) == "onnxruntime"
    assert "backend auto chose onnxruntime (tensorrt: TensorRT is not installed" in caplog.text
    d = tmp_path / "no_export"
    shutil.copytree(tiny_exported, d, ignore=shutil.ignore_patterns("onnx"))
    caplog.clear()
    assert backend_name(make_backend(d, BackendConfig(backend="auto"))) == "torch"
    assert (
        "backend auto chose torch" in caplog.text and "manifest.json does not exist" in caplog.text
    )


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("backend", "caffe", "backend='caffe' must be one of"),
        ("device", "tpu", "device='tpu' must be one of"),
        ("precision", "int8", "precision='int8' must be one of"),
        ("max_batch", 0, "max_batch=0 must be in"),
        ("threads", 0, "threads=0 must be in"),
    ],
)
def test_bad_backend_config_values_are_named(field, value, match):
    with pytest.raises(ConfigError, match=match):
        BackendConfig(**{field: value})
    with pytest.raises(ConfigError, match="precision='fp16' needs backend 'tensorrt'"):
        BackendConfig(precision="fp16")


def test_the_policy_runs_on_the_chosen_backend(tiny_exported):
    from wm_core.plan.policy import LatentMPCPolicy

    policy = LatentMPCPolicy(
        model_dir=tiny_exported, backend=ORT, planner_config=PlannerConfig(samples=32, iterations=1)
    )
    assert policy.settings["backend"] == "onnxruntime"
    rng = np.random.default_rng(0)
    obs = {
        "image": rng.integers(0, 255, (64, 64, 3), dtype=np.uint8),
        "joint_pos": np.array(sim_cell().arm.home_q),
        "suction": np.array([0.0]),
    }
    a = policy.act(obs)
    assert a.shape == (4,) and np.isfinite(a).all()
    with pytest.raises(ValueError, match="torch backend only"):
        LatentMPCPolicy(model_dir=tiny_exported, backend=ORT, world_model="copy-last")
