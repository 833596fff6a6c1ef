"""Collapse-prevention losses and collapse metrics.

VICReg (Bardes, Ponce, LeCun 2022): invariance (MSE) + variance (hinge on per-dimension std)
+ covariance (off-diagonal covariance squared). EMA distillation keeps a slowly moving target
encoder, updated by :func:`ema_update`, whose outputs are used under stop-gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812


def variance_loss(z: torch.Tensor, gamma: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    """Hinge on the std of each dimension. z: [N, D] -> scalar."""
    std = torch.sqrt(z.var(dim=0) + eps)  # [D]
    return F.relu(gamma - std).mean()


def covariance_loss(z: torch.Tensor) -> torch.Tensor:
    """Sum of squared off-diagonal covariances / D. z: [N, D] -> scalar."""
    n, d = z.shape
    zc = z - z.mean(dim=0)
    cov = (zc.T @ zc) / max(n - 1, 1)  # [D, D]
    off = cov - torch.diag(torch.diag(cov))
    return off.pow(2).sum() / d


def vicreg_loss(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    sim_w: float = 25.0,
    var_w: float = 25.0,
    cov_w: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """z_a, z_b: [N, D] expanded embeddings of two views -> (loss, parts)."""
    inv = F.mse_loss(z_a, z_b)
    var = variance_loss(z_a) + variance_loss(z_b)
    cov = covariance_loss(z_a) + covariance_loss(z_b)
    loss = sim_w * inv + var_w * var + cov_w * cov
    return loss, {"invariance": float(inv), "variance": float(var), "covariance": float(cov)}


@torch.no_grad()
def ema_update(target: torch.nn.Module, online: torch.nn.Module, momentum: float) -> None:
    """target <- momentum * target + (1 - momentum) * online, parameter by parameter."""
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.mul_(momentum).add_(o.detach(), alpha=1 - momentum)


@torch.no_grad()
def effective_rank(z: torch.Tensor, eps: float = 1e-7) -> float:
    """RankMe (Garrido et al. 2023): exp of the entropy of the normalised singular values.
    z: [N, D] -> a value in [1, min(N, D)]."""
    s = torch.linalg.svdvals(z.float() - z.float().mean(dim=0))
    p = s / (s.sum() + eps) + eps
    return float(torch.exp(-(p * p.log()).sum()))


@torch.no_grad()
def offdiag_cov_mass(z: torch.Tensor, eps: float = 1e-8) -> float:
    """Off-diagonal mass of the normalised covariance (the correlation matrix): the mean
    absolute correlation between distinct dimensions, 0 (decorrelated) to 1 (all dimensions
    collinear). Normalising makes it comparable across embedding sizes. z: [N, D]."""
    zc = z.float() - z.float().mean(dim=0)
    zc = zc / (zc.norm(dim=0, keepdim=True) + eps)
    corr = (zc.T @ zc).abs()  # [D, D]
    d = corr.shape[0]
    return float((corr.sum() - corr.diag().sum()) / max(d * (d - 1), 1))
