"""JEPA encoder, action-conditioned latent predictor, collapse-prevention losses."""

from wm_core.models.config import ModelConfig
from wm_core.models.world_model import WorldModel

__all__ = ["ModelConfig", "WorldModel"]
