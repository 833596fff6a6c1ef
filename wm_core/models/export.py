"""``wm export``: turn a training run into a shippable model directory.

Writes ``model.pt`` (weights + config, no optimiser, EMA target or expander), copies the
object readout, writes ``config.yaml`` (the model config, readable) and ``golden.json``: the
encoder and predictor outputs on a fixed, seeded input, which ``tests/`` compares against so
an accidental change to the model code or weights is caught.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import torch
import yaml

from wm_core.models.checkpoint import load_checkpoint, save_inference_checkpoint

GOLDEN_SEED = 1234


@torch.no_grad()
def golden_outputs(model) -> dict:
    """Encoder and predictor outputs on a fixed seeded input, summarised for comparison."""
    cfg = model.cfg
    gen = torch.Generator().manual_seed(GOLDEN_SEED)
    img = torch.rand(2, 3, cfg.image_size, cfg.image_size, generator=gen)  # [2, 3, S, S]
    p = torch.rand(2, 10, generator=gen)  # [2, 10]
    a = torch.rand(2, 3, 4, generator=gen) * 2 - 1  # [2, H=3, 4]
    z = model.encode(img)  # [2, N, D]
    zs, ps = model.rollout(z, p, a)  # [2, 3, N, D], [2, 3, 10]
    pf = model.rollout_proprio(z, p, a)  # [2, 3, 10]
    return {
        "seed": GOLDEN_SEED,
        "z_sum": float(z.sum()),
        "z_abs_sum": float(z.abs().sum()),
        "z_first": [float(v) for v in z[0, 0, :8]],
        "rollout_z_abs_sum": float(zs.abs().sum()),
        "rollout_z_last": [float(v) for v in zs[1, -1, -1, :8]],
        "rollout_p": [[float(v) for v in row] for row in ps[0]],
        "rollout_proprio_fast": [[float(v) for v in row] for row in pf[0]],
    }


def export_model(checkpoint: Path, readout: Path, out: Path, extra: dict | None = None) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = load_checkpoint(checkpoint)
    save_inference_checkpoint(out / "model.pt", model, extra)
    if Path(readout).resolve() != (out / "readout.pt").resolve():
        shutil.copyfile(readout, out / "readout.pt")
    (out / "config.yaml").write_text(
        yaml.safe_dump({"model": dataclasses.asdict(model.cfg)}, sort_keys=False)
    )
    shipped = load_checkpoint(out / "model.pt")  # golden values from what actually ships
    golden = golden_outputs(shipped)
    (out / "golden.json").write_text(json.dumps(golden, indent=2) + "\n")
    return {
        "model_bytes": (out / "model.pt").stat().st_size,
        "readout_bytes": (out / "readout.pt").stat().st_size,
    }
