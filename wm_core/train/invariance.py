"""``wm train invariance``: domain randomisation for a trained encoder, without retraining the
rest of the model.

The data are paired frames (``wm collect --paired``): each domain-randomised frame (other
table, floor, bin, arm and object colours and textures, tinted and moved lights) and the same
state rendered with the nominal look. The encoder is fine-tuned so that its latent of either
frame matches the *frozen starting encoder's* latent of the nominal frame:

    loss = mean_b ||E(x_rand) - E0(x_nom)||^2 + mean_b ||E(x_nom) - E0(x_nom)||^2

(the second term keeps the nominal look where it was). The targets are the starting model's
own latents, so the predictor, which was trained on them, and a readout fitted on them stay
valid: the encoder learns to ignore what the randomisation changes. The camera pose and the
table height are the same in both frames of a pair, so the encoder does not learn to undo
geometry, which the readout's per-patch priors handle from the cell file.

Writes ``OUT/last.pt`` (weights and config, as ``wm export`` and ``wm train readout --init``
read them; the summary under ``invariance``) and ``OUT/invariance.json``.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from wm_core.config import check_fields, check_range
from wm_core.data.shards import scan_shards
from wm_core.models import WorldModel
from wm_core.models.checkpoint import load_checkpoint, save_inference_checkpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InvarianceConfig:
    steps: int = 1500
    """Optimiser steps."""
    batch_size: int = 32
    """Pairs per step."""
    lr: float = 2e-4
    """AdamW learning rate (a fine-tune: well below training's 1e-3)."""
    stride: int = 2
    """Use every ``stride``-th frame of each episode."""
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self)
        check_range("steps", self.steps, 1, 1_000_000, integer=True)
        check_range("batch_size", self.batch_size, 1, 4096, integer=True)
        check_range("lr", self.lr, 1e-7, 1.0)
        check_range("stride", self.stride, 1, 1000, integer=True)


def load_pairs(data: Path, stride: int = 2) -> tuple[np.ndarray, np.ndarray, int]:
    """(randomised frames [M, S, S, 3], nominal frames [M, S, S, 3], bad shards) from the
    episodes under ``data`` that carry ``label/image_nominal``."""
    episodes, errors = scan_shards(data, with_labels=True)
    rand, nom = [], []
    for e in episodes:
        if "image" in e.obs and "image_nominal" in (e.labels or {}):
            rand.append(e.obs["image"][::stride])
            nom.append(e.labels["image_nominal"][::stride])
    if not rand:
        raise ValueError(
            f"{data}: no paired episodes (label/image_nominal): collect them with "
            "wm collect --paired and a randomised look (--appearance-jitter)"
        )
    return np.concatenate(rand), np.concatenate(nom), len(errors)


def _batch(images: np.ndarray, idx: np.ndarray) -> torch.Tensor:
    """uint8 [M, S, S, 3] rows ``idx`` -> float [B, 3, S, S] in [0, 1]."""
    return torch.from_numpy(images[idx]).permute(0, 3, 1, 2).float() / 255.0


@torch.no_grad()
def latent_gap(model: WorldModel, rand: np.ndarray, nom: np.ndarray, target: WorldModel) -> float:
    """Mean squared distance between ``model``'s latents of the randomised frames and
    ``target``'s of the nominal ones, over all pairs given (per latent element; compare it
    with the latents' variance across frames, ``test_latent_variance`` in the summary)."""
    total, n = 0.0, 0
    for i in range(0, len(rand), 128):
        idx = np.arange(i, min(i + 128, len(rand)))
        z = model.encode(_batch(rand, idx))  # [b, N, D]
        t = target.encode(_batch(nom, idx))  # [b, N, D]
        total += float(((z - t) ** 2).mean(dim=(1, 2)).sum())
        n += len(idx)
    return total / max(n, 1)


def train_invariance(init: Path, data: Path, out: Path, cfg: InvarianceConfig) -> dict:
    """Fine-tune the encoder of checkpoint ``init`` on the pairs under ``data``; the last
    tenth of the pairs is held out for the reported latent gaps."""
    teacher = load_checkpoint(init)  # frozen: the targets
    student = copy.deepcopy(teacher)
    teacher.requires_grad_(False)
    student.requires_grad_(False)
    student.encoder.requires_grad_(True)
    rand, nom, bad = load_pairs(data, cfg.stride)
    n_test = max(1, len(rand) // 10)
    test = rand[-n_test:], nom[-n_test:]
    rand, nom = rand[:-n_test], nom[:-n_test]
    if len(rand) < 2:
        raise ValueError(f"{data}: {len(rand)} training pairs; need >= 2")
    before = latent_gap(teacher, *test, teacher)
    with torch.no_grad():  # the scale the gaps compare with: the latents' own spread
        spread = float(teacher.encode(_batch(test[1], np.arange(min(n_test, 256)))).var(0).mean())
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    opt = torch.optim.AdamW(student.encoder.parameters(), lr=cfg.lr, weight_decay=1e-4)
    student.encoder.train()
    t0, losses = time.perf_counter(), []
    for step in range(cfg.steps):
        idx = rng.integers(0, len(rand), cfg.batch_size)
        xr, xn = _batch(rand, idx), _batch(nom, idx)  # [B, 3, S, S] each
        with torch.no_grad():
            target = teacher.encode(xn)  # [B, N, D]
        z = student.encode(torch.cat([xr, xn]))  # [2B, N, D]
        loss = F.mse_loss(z[: len(idx)], target) + F.mse_loss(z[len(idx) :], target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if step % 100 == 0:
            log.info("invariance step %d/%d loss %.5f", step, cfg.steps, losses[-1])
    seconds = time.perf_counter() - t0
    student.eval()
    after = latent_gap(student, *test, teacher)
    nominal_drift = latent_gap(student, test[1], test[1], teacher)
    summary = {
        "init": str(init),
        "config": asdict(cfg),
        "pairs_train": len(rand),
        "pairs_test": n_test,
        "bad_shards": bad,
        "seconds": round(seconds, 1),
        "final_loss": float(np.mean(losses[-50:])),
        "test_gap_before": before,
        "test_gap_after": after,
        "test_nominal_drift": nominal_drift,
        "test_latent_variance": spread,
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_inference_checkpoint(out / "last.pt", student, {"invariance": summary})
    (out / "invariance.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
