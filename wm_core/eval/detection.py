"""Score an object readout's table detections against ground-truth object centres (an
evaluation tool: the truth comes from a simulator and is used only to score)."""

from __future__ import annotations

import numpy as np
import torch

from wm_core.cell import Workcell
from wm_core.plan.task import BIN_MARGIN


@torch.no_grad()
def readout_maps(policy, images: list[np.ndarray]) -> list[torch.Tensor]:
    """The readout's raw map [1, 4, G, G] of each camera image [H, W, 3], computed as the
    stack computes it (the policy's image conversion, its encoder and tap)."""
    maps = []
    for img in images:
        x = policy.image_tensor({"image": img})  # [1, 3, S, S]
        if x is None:
            raise ValueError(f"unusable image of shape {getattr(img, 'shape', None)}")
        z, raw = policy.encode_with_map(x)
        maps.append(policy.readout.raw(z) if raw is None else raw)
    return maps


def score_detections(
    found: list[np.ndarray], truth: list[np.ndarray], cell: Workcell, match_m: float = 0.04
) -> dict:
    """Per frame, the detections [M, 3] outside the bin (as the task layer reads them) matched
    one to one to the true centres [K, 3]: a centre is found when its nearest detection is
    within ``match_m`` in xy and not another centre's already. Returns recall, false
    detections per frame and the matched detections' mean xy error (cm)."""
    hit = miss = false = 0
    errs: list[float] = []
    for det, gt in zip(found, truth, strict=True):
        det = np.array([d for d in det if not cell.bin.contains_xy(d[:2], BIN_MARGIN)])
        used: set[int] = set()
        for g in gt:
            if len(det):
                dist = np.linalg.norm(det[:, :2] - g[None, :2], axis=1)  # [M]
                j = int(dist.argmin())  # the nearest; taken already -> a miss
                if dist[j] < match_m and j not in used:
                    used.add(j)
                    errs.append(float(dist[j]))
                    hit += 1
                    continue
            miss += 1
        false += len(det) - len(used)
    return {
        "recall": round(hit / max(hit + miss, 1), 3),
        "false_per_frame": round(false / max(len(truth), 1), 2),
        "err_cm": round(100 * float(np.mean(errs)), 2) if errs else None,
    }
