"""Run by torchrun from test_trainer: train a few steps, then dump this rank's weights."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from wm_core.models import ModelConfig
from wm_core.train.trainer import TrainConfig, train

data, out = Path(sys.argv[1]), Path(sys.argv[2])
mcfg = ModelConfig(
    image_size=64, enc_channels=(8, 8, 8, 8), latent_dim=8, pred_channels=16, pred_blocks=1
)
res = train(data, out, mcfg, TrainConfig(steps=4, batch_size=4, horizon=2), progress=False)
assert res.summary["world_size"] == 2
torch.save(res.model.state_dict(), out / f"rank{dist.get_rank()}.pt")
dist.barrier()
dist.destroy_process_group()
