"""The tiny model directory (tests/conftest.py) with its ONNX export, shared by the deploy
tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_exported(tiny_model_dir, tmp_path_factory) -> Path:
    """models-like directory: model.pt, readout.pt and onnx/ (wm export --format onnx)."""
    from wm_core.deploy.onnx_export import export_onnx

    out = tmp_path_factory.mktemp("tiny_exported")
    for name in ("model.pt", "readout.pt"):
        shutil.copyfile(tiny_model_dir / name, out / name)
    export_onnx(out / "model.pt", out / "onnx")
    return out
