"""The world model: a spatial-latent image encoder plus an action-conditioned predictor.

State = (image latent z [B, N, D] with N = G*G patches, proprioception p [B, 10]).
Verbs, all batched: ``encode(images)``, ``predict(z, p, a)``, ``rollout(z0, p0, actions)``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from wm_core.config import ConfigError
from wm_core.models.config import ACTION_DIM, PROPRIO_DIM, PROPRIO_SCALE, ModelConfig

DECODER_CHANNELS = 32


class Encoder(nn.Module):
    """Stride-2 conv stages: [B, 3, S, S] uint8-range floats -> [B, G*G, D] patch latents."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        layers, c_in = [], 3
        for c in cfg.enc_channels:
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.GroupNorm(4, c), nn.GELU()]
            c_in = c
        layers.append(nn.Conv2d(c_in, cfg.latent_dim, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(x)  # [B, D, G, G]
        return z.flatten(2).transpose(1, 2)  # [B, G*G, D]

    def forward_tap(self, x: torch.Tensor, stage: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The latent and, on the way, conv stage ``stage``'s output (1-based; each stage is
        conv, norm, GELU): [B, G*G, D] and [B, G'*G', C] with G' = S / 2**stage."""
        if not 1 <= stage < len(self.net) // 3 + 1:
            raise ValueError(f"encoder stage {stage} is not in 1..{len(self.net) // 3}")
        f = self.net[: 3 * stage](x)  # [B, C, G', G']
        z = self.net[3 * stage :](f)  # [B, D, G, G]
        return z.flatten(2).transpose(1, 2), f.flatten(2).transpose(1, 2)


class _ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1),
            nn.GroupNorm(4, c),
            nn.GELU(),
            nn.Conv2d(c, c, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Predictor(nn.Module):
    """(z_t, p_t, a_t) -> (z_{t+1}, p_{t+1}), both as residual updates.

    Latent: a conv net over the grid, with proprioception and action broadcast as extra
    channels, so every patch knows where the tool is and where it is told to go.
    Proprioception: an MLP over (p_t, a_t, mean patch latent). It does not read the conv trunk,
    so :meth:`step_proprio` can roll proprioception out for thousands of candidate action
    sequences at MLP cost while the scene context is held at its current encoding.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.g, d, c = cfg.grid, cfg.latent_dim, cfg.pred_channels
        cond = PROPRIO_DIM + ACTION_DIM
        self.inp = nn.Conv2d(d + cond, c, 1)
        self.blocks = nn.Sequential(*[_ResBlock(c) for _ in range(cfg.pred_blocks)])
        self.out = nn.Conv2d(c, d, 1)
        self.proprio = nn.Sequential(
            nn.Linear(d + cond, cfg.proprio_hidden),
            nn.GELU(),
            nn.Linear(cfg.proprio_hidden, cfg.proprio_hidden),
            nn.GELU(),
            nn.Linear(cfg.proprio_hidden, PROPRIO_DIM),
        )
        self.register_buffer("p_scale", torch.tensor(PROPRIO_SCALE), persistent=False)

    def step_proprio(self, zbar: torch.Tensor, p: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """zbar [B, D] (mean patch latent), p [B, 10], a [B, 4] -> p' [B, 10]."""
        return p + self.proprio(torch.cat([zbar, p, a], dim=-1)) * self.p_scale

    def forward(self, z: torch.Tensor, p: torch.Tensor, a: torch.Tensor):
        b, n, d = z.shape
        cond = torch.cat([p, a], dim=-1)  # [B, P+A]
        grid = z.transpose(1, 2).reshape(b, d, self.g, self.g)  # [B, D, G, G]
        x = torch.cat([grid, cond[:, :, None, None].expand(-1, -1, self.g, self.g)], dim=1)
        h = self.blocks(self.inp(x))  # [B, C, G, G]
        dz = self.out(h).flatten(2).transpose(1, 2)  # [B, N, D]
        return z + dz, self.step_proprio(z.mean(dim=1), p, a)


class Decoder(nn.Module):
    """The generative baseline's pixel decoder: [B, G*G, D] -> [B, 3, 4G, 4G] in [-1, 1].

    Quarter resolution (32x32 for 128 px input; the loss compares with 4x4-average-pooled
    frames): a full-resolution decoder costs tens of times more than the encoder and predictor
    together on this CPU, so the baseline could not get the same training budget."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.g = cfg.grid
        chans = [cfg.latent_dim, DECODER_CHANNELS, 16]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:], strict=True):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1),
                nn.GroupNorm(4, c_out),
                nn.GELU(),
            ]
        layers += [nn.Conv2d(chans[-1], 3, 3, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        b, n, d = z.shape
        return self.net(z.transpose(1, 2).reshape(b, d, self.g, self.g))


def rollout_steps(predict, z0: torch.Tensor, p0: torch.Tensor, actions: torch.Tensor):
    """Roll ``predict(z, p, a) -> (z', p')`` over the horizon (the model, or an exported copy
    of it in another inference backend): z0 [B, N, D], p0 [B, 10], actions [B, H, 4] ->
    z [B, H, N, D], p [B, H, 10]."""
    zs, ps = [], []
    z, p = z0, p0
    for t in range(actions.shape[1]):
        z, p = predict(z, p, actions[:, t])
        zs.append(z)
        ps.append(p)
    return torch.stack(zs, dim=1), torch.stack(ps, dim=1)


def rollout_proprio_steps(step_proprio, z0: torch.Tensor, p0: torch.Tensor, actions: torch.Tensor):
    """Roll ``step_proprio(zbar, p, a) -> p'`` with the scene context held at z0:
    z0 [B, N, D] or [1, N, D], p0 [B, 10], actions [B, H, 4] -> p [B, H, 10]."""
    zbar = z0.mean(dim=1).expand(actions.shape[0], -1)  # [B, D]
    ps, p = [], p0
    for t in range(actions.shape[1]):
        p = step_proprio(zbar, p, actions[:, t])
        ps.append(p)
    return torch.stack(ps, dim=1)


class WorldModel(nn.Module):
    def __init__(self, cfg: ModelConfig | None = None):
        super().__init__()
        self.cfg = cfg or ModelConfig()
        self.encoder = Encoder(self.cfg)
        self.predictor = Predictor(self.cfg)
        self.target_encoder: Encoder | None = None
        self.decoder = Decoder(self.cfg) if self.cfg.objective == "generative" else None
        if self.cfg.collapse == "ema":
            self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.expander = nn.Sequential(
            nn.Linear(self.cfg.latent_dim, self.cfg.expander_dim),
            nn.GELU(),
            nn.Linear(self.cfg.expander_dim, self.cfg.expander_dim),
        )

    def _check_images(self, images: torch.Tensor) -> None:
        s = self.cfg.image_size
        if images.ndim != 4 or images.shape[1:] != (3, s, s):
            raise ConfigError(
                f"images must be [B, 3, {s}, {s}], got {list(images.shape)}; "
                "resize with cv2.resize(..., interpolation=cv2.INTER_AREA) first"
            )

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """images: [B, 3, S, S] in [0, 1] -> z: [B, G*G, D]."""
        self._check_images(images)
        return self.encoder(images * 2.0 - 1.0)

    def encode_tap(self, images: torch.Tensor, stage: int) -> tuple[torch.Tensor, torch.Tensor]:
        """images [B, 3, S, S] in [0, 1] -> (z [B, G*G, D], stage ``stage``'s map [B, G'*G', C]),
        for an object readout that reads a finer map than the latent."""
        self._check_images(images)
        return self.encoder.forward_tap(images * 2.0 - 1.0, stage)

    def predict(self, z: torch.Tensor, p: torch.Tensor, a: torch.Tensor):
        """One step: z [B, N, D], p [B, 10], a [B, 4] -> (z' [B, N, D], p' [B, 10])."""
        return self.predictor(z, p, a)

    def rollout(self, z0: torch.Tensor, p0: torch.Tensor, actions: torch.Tensor):
        """z0 [B, N, D], p0 [B, 10], actions [B, H, 4] -> z [B, H, N, D], p [B, H, 10]."""
        return rollout_steps(self.predict, z0, p0, actions)

    def rollout_proprio(self, z0: torch.Tensor, p0: torch.Tensor, actions: torch.Tensor):
        """The planner's fast path: proprioception only, scene context held at z0.

        z0 [B, N, D] or [1, N, D], p0 [B, 10], actions [B, H, 4] -> p [B, H, 10]."""
        return rollout_proprio_steps(self.predictor.step_proprio, z0, p0, actions)
