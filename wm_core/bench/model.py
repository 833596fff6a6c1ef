"""``wm bench model``: encoder latency, predictor rollout throughput, training throughput.

CPU figures always; CUDA figures too when a GPU is present (device named). Ratios against the
targets and against a same-run baseline (a copy-last "predictor", which does no work but the
tensor bookkeeping) make the figures comparable across noisy machines.
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np
import torch

from wm_core.models import ModelConfig, WorldModel
from wm_core.train.trainer import Objective, TrainConfig

ENCODER_TARGET_MS = 5.0


def _times_ms(fn, n: int, warmup: int = 5, sync=lambda: None) -> np.ndarray:
    for _ in range(warmup):
        fn()
    sync()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        sync()
        out.append((time.perf_counter() - t0) * 1e3)
    return np.array(out)


def _bench_device(
    device: str, cfg: ModelConfig, horizon: int, candidates: tuple[int, ...], iters: int
) -> dict:
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    torch.manual_seed(0)
    model = WorldModel(cfg).to(device).eval()
    s = cfg.image_size
    img = torch.rand(1, 3, s, s, device=device)
    res: dict = {}
    with torch.inference_mode():
        enc = _times_ms(lambda: model.encode(img), iters, sync=sync)
        res["encoder_ms_p50"] = round(float(np.percentile(enc, 50)), 3)
        res["encoder_ms_p99"] = round(float(np.percentile(enc, 99)), 3)
        res["encoder_vs_5ms_target_ratio"] = round(res["encoder_ms_p50"] / ENCODER_TARGET_MS, 3)
        z0 = model.encode(img)  # [1, N, D]
        for n in candidates:
            z = z0.expand(n, -1, -1).contiguous()
            p = torch.zeros(n, 10, device=device)
            a = torch.rand(n, horizon, 4, device=device) * 2 - 1
            t = _times_ms(
                lambda z=z, p=p, a=a: model.rollout(z, p, a), max(3, iters // 10), sync=sync
            )
            base = _times_ms(
                lambda z=z, a=a: z.unsqueeze(1).expand(-1, a.shape[1], -1, -1).contiguous(),
                max(3, iters // 10),
                sync=sync,
            )
            med = float(np.median(t))
            res[f"rollout_ms_N{n}_H{horizon}"] = round(med, 2)
            res[f"rollout_steps_per_s_N{n}_H{horizon}"] = round(n * horizon / med * 1e3, 1)
            res[f"rollout_vs_copy_last_ratio_N{n}"] = round(
                med / max(float(np.median(base)), 1e-6), 1
            )
    # training throughput on synthetic windows (no disk)
    tcfg = TrainConfig(batch_size=16, horizon=3)
    obj = Objective(cfg, tcfg).to(device)
    opt = torch.optim.AdamW([q for q in obj.parameters() if q.requires_grad], lr=1e-3)
    b, h = tcfg.batch_size, tcfg.horizon
    imgs = torch.randint(0, 255, (b, h + 1, 3, s, s), dtype=torch.uint8, device=device)
    prop = torch.randn(b, h + 1, 10, device=device)
    acts = torch.rand(b, h, 4, device=device)

    def step():
        loss, _ = obj(imgs, prop, acts)
        opt.zero_grad()
        loss.backward()
        opt.step()

    tr = _times_ms(step, max(3, iters // 20), warmup=2, sync=sync)
    res["train_windows_per_s"] = round(b / float(np.median(tr)) * 1e3, 1)
    res["train_batch"] = {"windows": b, "horizon": h}
    return res


def bench_model(
    iters: int = 100, horizon: int = 5, candidates: tuple[int, ...] = (256, 1024)
) -> dict:
    cfg = ModelConfig()
    counted = WorldModel(cfg)
    out = {
        "benchmark": "model",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "image_size": cfg.image_size,
        "latent_grid": [cfg.grid * cfg.grid, cfg.latent_dim],
        "params": {
            "encoder": sum(p.numel() for p in counted.encoder.parameters()),
            "predictor": sum(p.numel() for p in counted.predictor.parameters()),
        },
        "cpu": _bench_device("cpu", cfg, horizon, candidates, iters),
    }
    if torch.cuda.is_available():
        out["cuda_device"] = torch.cuda.get_device_name(0)
        out["cuda"] = _bench_device("cuda", cfg, horizon, candidates, iters)
    else:
        out["cuda"] = "skipped: no CUDA device on this machine"
    return out
