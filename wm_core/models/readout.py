"""Object readout: a linear probe over the latent grid that finds objects and their positions.

The encoder learns objects without labels. This readout is a *probe* on top of the frozen
latent: one linear map over each patch's 3x3 neighbourhood (a 3x3 convolution, no
nonlinearity) gives, per patch, an objectness logit and a correction to that patch's prior
position. It is fitted on the privileged labels of recorded simulation episodes (as any
probe is) and then reads only the image latent at run time. The task layer uses it to pick
the next object; ``wm evaluate-model`` scores it on held-out seeds.

Each patch's prior position is where its pixel-centre ray meets the table-top plane, from
the cell's scene-camera calibration (``wm_core.cell``), so the probe predicts small offsets:
``xyz = prior + 0.05 m * out``. An object belongs to the patch its centre projects into.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

log = logging.getLogger(__name__)

OFFSET_SCALE = 0.05  # m per unit of probe output
READOUT_VERSION = 1
OBJECT_CENTRE_Z = 0.025  # m above the table top: a typical object centre height


def project(points: np.ndarray, k: np.ndarray, t_world_cam: np.ndarray) -> np.ndarray:
    """World points [..., 3] -> pixel coordinates [..., 2] (u right, v down) and depth [...]."""
    r, c = t_world_cam[:3, :3], t_world_cam[:3, 3]
    pc = (points - c) @ r  # [..., 3] in the OpenCV camera frame
    uv = pc[..., :2] / pc[..., 2:3] * np.array([k[0, 0], k[1, 1]]) + np.array([k[0, 2], k[1, 2]])
    return np.concatenate([uv, pc[..., 2:3]], axis=-1)


def cell_priors(
    k: np.ndarray, t_world_cam: np.ndarray, size: int, grid: int, table_z: float = 0.0
) -> np.ndarray:
    """[G, G, 3] world points where each patch's centre ray meets the table-top plane
    z = ``table_z`` (the cell's), lifted to a typical object centre."""
    cell = size / grid
    centres = (np.arange(grid) + 0.5) * cell
    u, v = np.meshgrid(centres, centres)  # [G, G] each; row index = v
    rays = np.stack(
        [(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], axis=-1
    )  # [G, G, 3] in the camera frame
    d = rays @ t_world_cam[:3, :3].T  # [G, G, 3] in the world frame
    c = t_world_cam[:3, 3]
    s = (table_z - c[2]) / np.where(np.abs(d[..., 2]) < 1e-9, -1e-9, d[..., 2])
    pts = c + d * s[..., None]
    pts[..., 2] = table_z + OBJECT_CENTRE_Z
    return pts.astype(np.float32)


class ObjectReadout(nn.Module):
    """z [B, G*G, D] -> objectness logits [B, G, G] and positions [B, G, G, 3] (m, world).

    ``hidden=0``: the linear probe (one 3x3 convolution). ``hidden>0``: a small nonlinear
    readout (3x3 conv, GELU, 1x1 conv) for the task layer, still reading only the latent."""

    def __init__(self, latent_dim: int, grid: int, priors: np.ndarray, hidden: int = 0):
        super().__init__()
        self.grid, self.hidden = grid, hidden
        if hidden:
            self.conv = nn.Sequential(
                nn.Conv2d(latent_dim, hidden, 3, padding=1), nn.GELU(), nn.Conv2d(hidden, 4, 1)
            )
        else:
            self.conv = nn.Conv2d(latent_dim, 4, 3, padding=1)
        self.register_buffer("priors", torch.as_tensor(priors, dtype=torch.float32))  # [G, G, 3]

    def forward(
        self, z: torch.Tensor, priors: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``priors``: per-image priors [B, G, G, 3] (training on frames from cameras at
        different poses); default the buffer, this cell's camera."""
        b, n, d = z.shape
        out = self.conv(z.transpose(1, 2).reshape(b, d, self.grid, self.grid))  # [B, 4, G, G]
        base = self.priors if priors is None else priors  # [G, G, 3] or [B, G, G, 3]
        xyz = base + OFFSET_SCALE * out[:, 1:].permute(0, 2, 3, 1)  # [B, G, G, 3]
        return out[:, 0], xyz

    @torch.no_grad()
    def detect(
        self, z: torch.Tensor, threshold: float = 0.5, min_separation: float = 0.05
    ) -> list[np.ndarray]:
        """Per image, the detected object positions [M, 4] = (x, y, z, probability), strongest
        first: patches above ``threshold``, suppressed greedily in world space (a patch whose
        position lies within ``min_separation`` m, in xy, of a stronger kept one is the same
        object seen from a neighbouring patch). Suppressing by distance instead of by grid
        neighbourhood keeps two objects in adjacent patches apart."""
        logit, xyz = self(z)
        prob = torch.sigmoid(logit)  # [B, G, G]
        found = []
        for i in range(z.shape[0]):
            sel = prob[i] > threshold  # [G, G]
            rows = torch.cat([xyz[i][sel], prob[i][sel][:, None]], dim=1).numpy()  # [M, 4]
            rows = rows[np.argsort(-rows[:, 3], kind="stable")]
            kept: list[np.ndarray] = []
            for r in rows:
                if all(np.hypot(*(r[:2] - k[:2])) >= min_separation for k in kept):
                    kept.append(r)
            found.append(np.array(kept, dtype=np.float32).reshape(-1, 4))
        return found


def readout_targets(
    obj_pos: np.ndarray, k: np.ndarray, t_world_cam: np.ndarray, size: int, grid: int
) -> tuple[np.ndarray, np.ndarray]:
    """Object centres [M, K, 3] -> objectness [M, G, G] (0/1) and positions [M, G, G, 3]."""
    m = obj_pos.shape[0]
    occ = np.zeros((m, grid, grid), np.float32)
    pos = np.zeros((m, grid, grid, 3), np.float32)
    uvd = project(obj_pos, k, t_world_cam)  # [M, K, 3]
    cols = np.floor(uvd[..., 0] / (size / grid)).astype(int)
    rows = np.floor(uvd[..., 1] / (size / grid)).astype(int)
    ok = (cols >= 0) & (cols < grid) & (rows >= 0) & (rows < grid) & (uvd[..., 2] > 0)
    fi, ki = np.nonzero(ok)
    occ[fi, rows[fi, ki], cols[fi, ki]] = 1.0
    pos[fi, rows[fi, ki], cols[fi, ki]] = obj_pos[fi, ki]
    return occ, pos


def fit_readout(
    readout: ObjectReadout,
    z: torch.Tensor,
    occ: torch.Tensor,
    pos: torch.Tensor,
    steps: int = 400,
    batch: int = 512,
    seed: int = 0,
    priors: torch.Tensor | None = None,
) -> dict[str, float]:
    """Fit on frozen latents z [M, N, D] with targets occ [M, G, G], pos [M, G, G, 3] (and, if
    the frames come from cameras at different poses, their priors [M, G, G, 3])."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(readout.parameters(), lr=1e-2, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    pos_weight = (1 - occ.mean()) / occ.mean().clamp(min=1e-6)
    for _ in range(steps):
        idx = torch.randint(0, z.shape[0], (min(batch, z.shape[0]),), generator=gen)
        logit, xyz = readout(z[idx], None if priors is None else priors[idx])
        cls = F.binary_cross_entropy_with_logits(logit, occ[idx], pos_weight=pos_weight)
        m = occ[idx] > 0  # [b, G, G]
        reg = ((xyz[m] - pos[idx][m]) / OFFSET_SCALE).pow(2).mean() if m.any() else 0.0 * cls
        loss = cls + reg
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return {"bce": float(cls.detach()), "reg": float(reg.detach())}


def position_r2(
    readout: ObjectReadout,
    z: torch.Tensor,
    occ: torch.Tensor,
    pos: torch.Tensor,
    priors: torch.Tensor | None = None,
):
    """R^2 (variance-weighted over x, y, z) and mean error (m) of the probe's positions at the
    patches that hold an object."""
    with torch.no_grad():
        _, xyz = readout(z, priors)
    m = occ > 0
    pred, true = xyz[m].numpy(), pos[m].numpy()  # [O, 3]
    ss_res = ((pred - true) ** 2).sum()
    ss_tot = ((true - true.mean(0)) ** 2).sum() + 1e-12
    err = np.linalg.norm(pred - true, axis=1)
    return float(1 - ss_res / ss_tot), float(err.mean())
