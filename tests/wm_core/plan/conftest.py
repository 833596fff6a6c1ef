"""A world model with known dynamics, for testing the planner's optimisers in isolation."""

import pytest
import torch

from wm_core.cell import sim_cell
from wm_core.models import ModelConfig
from wm_core.robot import ArmKinematics


class KinematicModel(torch.nn.Module):
    """The tool moves 1.8 cm per unit action; suction follows the sign of a[3]; joints hold.
    (The learned model is tested against recorded data elsewhere; here the optimiser is.)"""

    def __init__(self):
        super().__init__()
        self.cfg = ModelConfig()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def rollout_proprio(self, z0, p0, actions):
        ps, p = [], p0
        for t in range(actions.shape[1]):
            a = actions[:, t]
            tool = p[:, 6:9] + 0.018 * a[:, :3]
            suction = torch.sigmoid(20 * a[:, 3:4])
            p = torch.cat([p[:, :6], tool, suction], dim=1)
            ps.append(p)
        return torch.stack(ps, 1)

    def rollout(self, z0, p0, actions):
        p = self.rollout_proprio(z0, p0, actions)
        return z0[:, None].expand(-1, actions.shape[1], -1, -1), p


@pytest.fixture
def kin_model():
    return KinematicModel()


@pytest.fixture
def state():
    cfg = ModelConfig()
    q = torch.tensor(sim_cell().arm.home_q, dtype=torch.float32)
    tool = torch.tensor(ArmKinematics().tool_position(q.numpy()), dtype=torch.float32)
    p = torch.cat([q, tool, torch.zeros(1)])[None]  # [1, 10]
    z = torch.zeros(1, cfg.grid * cfg.grid, cfg.latent_dim)
    return z, p
