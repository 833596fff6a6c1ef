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

**Where it reads** (``source``): the latent grid (``latent``, G x G, the default and the shipped
readout), or a finer map of the same frozen encoder, tapped before its last stages (``stage3``:
2G x 2G x 64, ``stage2``: 4G x 4G x 48; :data:`READOUT_SOURCES`). A camera that sees the
objects small and far, so that several share one latent patch (the PyBullet cell's), needs
the finer map; the encoder is the same and nothing else changes. The readout is split in two:
:meth:`ObjectReadout.raw` (features -> a raw map [B, 4, G', G'], what the perception node
computes when the features never leave it) and :meth:`ObjectReadout.decode` (raw map + this
cell's priors -> objectness and positions, what the planner does with the camera it knows).
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
READOUT_SOURCES = {"latent": None, "stage3": 3, "stage2": 2}
"""Feature maps a readout can read: the latent, or the output of the encoder's conv stage N
(1-based; the encoder halves the resolution at every stage)."""


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
    """features [B, G*G, C] -> objectness logits [B, G, G] and positions [B, G, G, 3] (m, world).

    ``hidden=0``: the linear probe (one 3x3 convolution). ``hidden>0``: a small nonlinear
    readout (3x3 conv, GELU, 1x1 conv) for the task layer, still reading only the encoder's
    features. ``source``: which map it reads (:data:`READOUT_SOURCES`; C and G are that map's)."""

    def __init__(
        self, channels: int, grid: int, priors: np.ndarray, hidden: int = 0, source: str = "latent"
    ):
        super().__init__()
        if source not in READOUT_SOURCES:
            raise ValueError(f"readout source {source!r} must be one of {list(READOUT_SOURCES)}")
        self.grid, self.hidden, self.source, self.channels = grid, hidden, source, channels
        if hidden:
            self.conv = nn.Sequential(
                nn.Conv2d(channels, hidden, 3, padding=1), nn.GELU(), nn.Conv2d(hidden, 4, 1)
            )
        else:
            self.conv = nn.Conv2d(channels, 4, 3, padding=1)
        self.register_buffer("priors", torch.as_tensor(priors, dtype=torch.float32))  # [G, G, 3]

    def raw(self, z: torch.Tensor) -> torch.Tensor:
        """features [B, G*G, C] -> the raw map [B, 4, G, G] (logit, 3 scaled offsets)."""
        b, n, c = z.shape
        return self.conv(z.transpose(1, 2).reshape(b, c, self.grid, self.grid))

    def decode(
        self, out: torch.Tensor, priors: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """raw map [B, 4, G, G] -> logits [B, G, G], positions [B, G, G, 3] (m, world)."""
        base = self.priors if priors is None else priors  # [G, G, 3] or [B, G, G, 3]
        xyz = base + OFFSET_SCALE * out[:, 1:].permute(0, 2, 3, 1)  # [B, G, G, 3]
        return out[:, 0], xyz

    def forward(
        self, z: torch.Tensor, priors: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``priors``: per-image priors [B, G, G, 3] (training on frames from cameras at
        different poses); default the buffer, this cell's camera."""
        return self.decode(self.raw(z), priors)

    @torch.no_grad()
    def detect(
        self, z: torch.Tensor, threshold: float = 0.5, min_separation: float = 0.05
    ) -> list[np.ndarray]:
        """Per image, the detected object positions [M, 4] = (x, y, z, probability), strongest
        first: patches above ``threshold``, suppressed greedily in world space (a patch whose
        position lies within ``min_separation`` m, in xy, of a stronger kept one is the same
        object seen from a neighbouring patch). Suppressing by distance instead of by grid
        neighbourhood keeps two objects in adjacent patches apart."""
        return self.detect_map(self.raw(z), threshold, min_separation)

    @torch.no_grad()
    def detect_map(
        self, out: torch.Tensor, threshold: float = 0.5, min_separation: float = 0.05
    ) -> list[np.ndarray]:
        """:meth:`detect` from a raw map [B, 4, G, G] (:meth:`raw`'s, computed elsewhere)."""
        logit, xyz = self.decode(out)
        prob = torch.sigmoid(logit)  # [B, G, G]
        found = []
        for i in range(out.shape[0]):
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


def map_rows(grid: int, width: int) -> int:
    """Rows of ``width`` floats that a raw readout map [1, 4, G, G] takes in the latent message
    (:func:`pack_map`)."""
    n = 4 * grid * grid
    if n % width:
        raise ValueError(f"a {grid}x{grid} readout map does not fill rows of {width} floats")
    return n // width


def pack_map(z: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """latent [N, D] + raw readout map [1, 4, G, G] -> rows [N + 4*G*G/D, D]: the latent, then
    the map patch by patch (G*G x 4, row-major), so that both travel in one message from one
    image and can never be paired wrongly."""
    z = np.asarray(z, np.float32)
    raw = np.asarray(raw, np.float32)
    g, d = raw.shape[-1], z.shape[-1]
    patches = raw.reshape(4, g * g).T  # [G*G, 4]
    return np.concatenate([z, patches.reshape(map_rows(g, d), d)])


def unpack_map(rows: np.ndarray, n: int, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`pack_map`'s inverse: rows [N + R, D] -> latent [N, D], raw map [1, 4, G, G];
    ValueError when the rows do not hold both."""
    want = n + map_rows(grid, rows.shape[1])
    if rows.shape[0] != want:
        raise ValueError(
            f"latent message has {rows.shape[0]} rows, expected {want} ({n} latent + the "
            f"{grid}x{grid} readout map): is perception running this model directory?"
        )
    patches = rows[n:].reshape(grid * grid, 4)  # [G*G, 4]
    return rows[:n], patches.T.reshape(1, 4, grid, grid)
