"""A tiny untrained model directory with its ONNX export, shared by the deploy tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_exported(tmp_path_factory) -> Path:
    """models-like directory: model.pt, readout.pt and onnx/ (wm export --format onnx)."""
    import torch

    from wm_core.deploy.onnx_export import export_onnx
    from wm_core.models import ModelConfig, WorldModel
    from wm_core.models.checkpoint import save_inference_checkpoint
    from wm_core.models.readout import READOUT_VERSION
    from wm_core.train.readout import new_readout

    out = tmp_path_factory.mktemp("tiny_exported")
    torch.manual_seed(0)
    cfg = ModelConfig(
        image_size=64, enc_channels=(8, 8, 8, 8), latent_dim=8, pred_channels=16, pred_blocks=1
    )
    model = WorldModel(cfg).eval()
    save_inference_checkpoint(out / "model.pt", model)
    state = {"version": READOUT_VERSION, "hidden": 0, "state": new_readout(model, 0).state_dict()}
    torch.save(state, out / "readout.pt")
    export_onnx(out / "model.pt", out / "onnx")
    return out
