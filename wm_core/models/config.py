"""Typed, validated configuration of the world model."""

from __future__ import annotations

from dataclasses import dataclass

from wm_core.config import ConfigError, check_range

PROPRIO_DIM = 10  # joint positions [6] + tool position [3] + suction [1]
ACTION_DIM = 4  # [dx, dy, dz, suction] (wm_core.sim.env)
PROPRIO_SCALE = (0.05,) * 6 + (0.02,) * 3 + (1.0,)
"""Typical one-step change of each proprioception entry (rad, m, on/off): the predictor's
proprioception output and its loss are measured in these units, so the 1.8 cm tool steps are
not drowned by joint angles."""
OBJECTIVES = ("jepa", "generative")


@dataclass(frozen=True)
class ModelConfig:
    image_size: int = 128
    """Square input image side (px); must be divisible by 2**len(enc_channels)."""
    enc_channels: tuple[int, ...] = (24, 48, 64, 64)
    """Channels of the stride-2 conv stages (multiples of 4, for GroupNorm(4, c)); the latent
    grid side is image_size / 2**stages."""
    latent_dim: int = 32
    """Channels D of each latent patch; the image latent is a [G*G, D] grid of patches."""
    pred_channels: int = 64
    """Hidden channels of the convolutional latent predictor (a multiple of 4)."""
    pred_blocks: int = 2
    """Residual blocks in the predictor."""
    proprio_hidden: int = 128
    """Hidden width of the proprioception head of the predictor (an MLP over proprioception,
    action and the patch-mean image latent, so a planner can roll proprioception out cheaply)."""
    objective: str = "jepa"
    """"jepa": latent prediction (the product). "generative": the pixel-reconstruction baseline
    (same encoder and predictor plus a decoder; losses in pixels)."""
    collapse: str = "vicreg"
    """Collapse prevention: "vicreg" (variance + covariance on an expander) or "ema"
    (stop-gradient EMA target encoder, BYOL/I-JEPA)."""
    ema_momentum: float = 0.996
    """Target-encoder EMA momentum (collapse="ema")."""
    expander_dim: int = 256
    """Output width of the VICReg expander head."""

    def __post_init__(self) -> None:
        check_range("image_size", self.image_size, 32, 512, integer=True)
        if not isinstance(self.enc_channels, tuple) or not 1 <= len(self.enc_channels) <= 9:
            raise ConfigError(f"enc_channels={self.enc_channels!r} must be 1-9 channel counts")
        for i, c in enumerate(self.enc_channels):
            check_range(f"enc_channels[{i}]", c, 4, 4096, integer=True)
            if c % 4:  # GroupNorm(4, c) after each stage
                raise ConfigError(f"enc_channels[{i}]={c} must be a multiple of 4")
        if self.image_size % (2 ** len(self.enc_channels)):
            raise ConfigError(
                f"image_size={self.image_size} must be divisible by "
                f"2**len(enc_channels)={2 ** len(self.enc_channels)}"
            )
        check_range("latent_dim", self.latent_dim, 1, 1024, integer=True)
        check_range("pred_channels", self.pred_channels, 4, 2048, integer=True)
        if self.pred_channels % 4:  # GroupNorm(4, c) in the residual blocks
            raise ConfigError(f"pred_channels={self.pred_channels} must be a multiple of 4")
        check_range("pred_blocks", self.pred_blocks, 0, 32, integer=True)
        check_range("proprio_hidden", self.proprio_hidden, 1, 4096, integer=True)
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective={self.objective!r} must be one of {OBJECTIVES}")
        if self.collapse not in ("vicreg", "ema"):
            raise ConfigError(f"collapse={self.collapse!r} must be 'vicreg' or 'ema'")
        check_range("ema_momentum", self.ema_momentum, 0.0, 1.0)
        check_range("expander_dim", self.expander_dim, 1, 8192, integer=True)

    @property
    def grid(self) -> int:
        """Side G of the latent grid."""
        return self.image_size // 2 ** len(self.enc_channels)
