import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("LP_NUM_THREADS", "0")

# shared test helpers (fuzzlib) importable from every test directory
sys.path.insert(0, str(Path(__file__).resolve().parent))


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
