"""Fixtures of the ROS node tests (each test module uses its own ROS_DOMAIN_ID)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
import ros_harness  # noqa: F401  (makes the ros_ws packages importable)


@pytest.fixture(autouse=True)
def _collect_this_tests_garbage():
    """Collect each ROS test's garbage at its own teardown. rclpy futures whose exception was
    never fetched (a callback that raced a node's destruction: "cannot use Destroyable because
    destruction was requested") print that line to stderr when collected; left to a later
    automatic collection, the line landed inside another test's captured stderr and failed its
    one-line-error check (fresh-clone run, test_soak's CLI errors)."""
    yield
    gc.collect()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """An untrained tiny world model + readout in the shipped layout (64 px, 4x4x8 latent)."""
    import torch

    from wm_core.models import ModelConfig, WorldModel
    from wm_core.models.checkpoint import save_inference_checkpoint
    from wm_core.models.readout import READOUT_VERSION
    from wm_core.train.readout import new_readout

    out = tmp_path_factory.mktemp("tiny_model")
    torch.manual_seed(0)
    cfg = ModelConfig(
        image_size=64, enc_channels=(8, 8, 8, 8), latent_dim=8, pred_channels=16, pred_blocks=1
    )
    model = WorldModel(cfg).eval()
    save_inference_checkpoint(out / "model.pt", model)
    readout = new_readout(model, 0)
    torch.save(
        {"version": READOUT_VERSION, "hidden": 0, "state": readout.state_dict()},
        out / "readout.pt",
    )
    return out
