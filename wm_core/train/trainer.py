"""``wm train``: the JEPA world-model objective, single process or DDP under torchrun.

Per batch of windows (images x_0..x_H, proprioception p_0..p_H, actions a_0..a_{H-1}):

1. Encode every frame with the online encoder: z_t.
   Targets: the EMA target encoder under stop-gradient (``collapse="ema"``), or the online
   encoder itself with VICReg variance + covariance on an expander head (``"vicreg"``).
2. Teacher forcing: predict(z_t, p_t, a_t) against (target z_{t+1}, p_{t+1}) for every t.
3. Multi-step rollout from (z_0, p_0) under a_0..a_{H-1} against the targets at every step.
4. Auxiliary proprioception probe: the pooled image latent predicts the FK tool position
   (a real arm knows it; object ground truth is never used).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F  # noqa: N812
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from wm_core.config import ConfigError, check_range
from wm_core.models import ModelConfig, WorldModel
from wm_core.models.checkpoint import (
    CHECKPOINT_VERSION,
    CheckpointError,
    load_weights,
    model_config_of,
    read_checkpoint,
)
from wm_core.models.config import PROPRIO_SCALE
from wm_core.models.losses import (
    covariance_loss,
    effective_rank,
    ema_update,
    offdiag_cov_mass,
    variance_loss,
)
from wm_core.train.data import WindowDataset
from wm_core.train.plots import plot_run

log = logging.getLogger(__name__)

TRAIN_MODES = ("encoder", "world-model", "all")
TRAIN_DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """The torch device for a ``TrainConfig.device`` value; "cuda" without a GPU is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device='cuda' but torch sees no CUDA device (use auto or cpu)")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2000
    """Optimiser steps."""
    batch_size: int = 32
    """Windows per step per process."""
    horizon: int = 3
    """Rollout horizon H of the multi-step loss."""
    lr: float = 1e-3
    """AdamW learning rate."""
    weight_decay: float = 1e-4
    rollout_weight: float = 1.0
    """Weight of the multi-step rollout loss against teacher forcing."""
    proprio_weight: float = 1.0
    """Weight of the proprioception prediction loss."""
    tool_probe_weight: float = 1.0
    """Weight of the auxiliary tool-position loss on the pooled image latent."""
    vicreg_var_weight: float = 1.0
    vicreg_cov_weight: float = 0.04
    log_every: int = 10
    ckpt_every: int = 200
    seed: int = 0
    mode: str = "all"
    """"all": everything jointly. "encoder": the self-supervised encoder objective (latent
    prediction, collapse prevention, tool probe), no proprioception dynamics. "world-model":
    the encoder frozen (from ``init``), the predictor trained on latents and proprioception."""
    init: str = ""
    """Checkpoint whose model weights start the run (required for mode "world-model" unless
    the run directory already has ``last.pt`` to resume from)."""
    device: str = "auto"
    """"auto" (CUDA when available, else CPU), "cpu" or "cuda". Under torchrun with CUDA each
    rank takes the GPU ``LOCAL_RANK``."""

    def __post_init__(self) -> None:
        if self.mode not in TRAIN_MODES:
            raise ConfigError(f"mode={self.mode!r} must be one of {TRAIN_MODES}")
        check_range("steps", self.steps, 1, 10_000_000, integer=True)
        check_range("batch_size", self.batch_size, 1, 4096, integer=True)
        check_range("horizon", self.horizon, 1, 32, integer=True)
        check_range("lr", self.lr, 1e-7, 1.0)
        check_range("log_every", self.log_every, 1, 1_000_000, integer=True)
        check_range("ckpt_every", self.ckpt_every, 1, 1_000_000, integer=True)
        if self.device not in TRAIN_DEVICES:
            raise ConfigError(f"device={self.device!r} must be one of {TRAIN_DEVICES}")


def _dist() -> tuple[int, int]:
    """(rank, world size); initialises the process group under torchrun."""
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class ToolProbe(torch.nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.head = torch.nn.Linear(d, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(z.mean(dim=1))  # [B, N, D] -> [B, 3]


class Objective(torch.nn.Module):
    """World model + tool probe, with the whole loss in ``forward`` so DDP can wrap it."""

    def __init__(self, mcfg: ModelConfig, tcfg: TrainConfig):
        super().__init__()
        self.model, self.probe = WorldModel(mcfg), ToolProbe(mcfg.latent_dim)
        self.mcfg, self.tcfg = mcfg, tcfg

    def forward(self, img, prop, act, with_metrics: bool = False):
        return jepa_loss(self.model, self.probe, img, prop, act, self.mcfg, self.tcfg, with_metrics)


def _proprio_mse(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """MSE in units of a typical one-step change (``PROPRIO_SCALE``). [..., 10] -> scalar."""
    scale = pred.new_tensor(PROPRIO_SCALE)
    return F.mse_loss(pred / scale, true / scale)


def jepa_loss(
    model: WorldModel,
    probe: ToolProbe,
    img,
    prop,
    act,
    mcfg: ModelConfig,
    tcfg: TrainConfig,
    with_metrics: bool = False,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The whole objective for one batch. img [B, H+1, 3, S, S] uint8, prop [B, H+1, 10],
    act [B, H, 4]. ``tcfg.mode`` picks the trained parts; ``mcfg.objective`` the loss family."""
    b, h1 = img.shape[:2]
    frames = img.flatten(0, 1).float() / 255.0  # [B*(H+1), 3, S, S]
    train_encoder = tcfg.mode != "world-model"
    train_dynamics = tcfg.mode != "encoder"  # proprioception prediction
    with torch.set_grad_enabled(train_encoder and torch.is_grad_enabled()):
        z_all = model.encode(frames).unflatten(0, (b, h1))  # [B, H+1, N, D]
    generative = mcfg.objective == "generative"
    if mcfg.collapse == "ema" and not generative:
        with torch.no_grad():
            tgt = model.target_encoder(frames * 2.0 - 1.0).unflatten(0, (b, h1))
    else:
        tgt = z_all if train_encoder else z_all.detach()
    # teacher forcing over every step
    z_tf, p_tf = model.predict(
        z_all[:, :-1].flatten(0, 1), prop[:, :-1].flatten(0, 1), act.flatten(0, 1)
    )  # [B*H, N, D], [B*H, 10]
    # multi-step rollout from step 0
    z_ro, p_ro = model.rollout(z_all[:, 0], prop[:, 0], act)  # [B, H, N, D], [B, H, 10]
    parts: dict[str, float] = {}
    if generative:  # the baseline: latents are judged by their decoded pixels
        small = F.avg_pool2d(frames, frames.shape[-1] // (4 * mcfg.grid)) * 2.0 - 1.0
        pix = small.unflatten(0, (b, h1))  # [B, H+1, 3, 4G, 4G] in [-1, 1]
        recon = F.mse_loss(model.decoder(z_all.flatten(0, 1)), pix.flatten(0, 1))
        tf_z = torch.zeros((), device=img.device)  # pixels are judged on the decoded rollout
        ro_z = F.mse_loss(model.decoder(z_ro.flatten(0, 1)), pix[:, 1:].flatten(0, 1))
        loss = recon
        parts["recon_pixels"] = recon.item()
    else:
        tf_z = F.mse_loss(z_tf, tgt[:, 1:].flatten(0, 1))
        ro_z = F.mse_loss(z_ro, tgt[:, 1:])
        loss = torch.zeros((), device=img.device)
    loss = loss + tf_z + tcfg.rollout_weight * ro_z
    parts |= {"tf_latent": tf_z.item(), "rollout_latent": ro_z.item()}
    if train_dynamics:
        prop_loss = _proprio_mse(p_tf, prop[:, 1:].flatten(0, 1)) + _proprio_mse(p_ro, prop[:, 1:])
        loss = loss + tcfg.proprio_weight * prop_loss
        parts["proprio"] = prop_loss.item()
    emb = z_all.flatten(0, 2)  # [B*(H+1)*N, D] patch embeddings
    if train_encoder:
        tool = F.mse_loss(probe(z_all.flatten(0, 1)), prop.flatten(0, 1)[:, 6:9])
        loss = loss + tcfg.tool_probe_weight * tool
        parts["tool_probe"] = tool.item()
        if mcfg.collapse == "vicreg" and not generative:
            e = model.expander(emb)
            var, cov = variance_loss(e), covariance_loss(e)
            loss = loss + tcfg.vicreg_var_weight * var + tcfg.vicreg_cov_weight * cov
            parts |= {"vicreg_var": var.item(), "vicreg_cov": cov.item()}
    if with_metrics:  # collapse metrics (an SVD): only on the steps that are logged
        parts["min_dim_std"] = float(emb.detach().std(dim=0).min())
        parts["effective_rank"] = effective_rank(emb.detach())
        parts["offdiag_cov_mass"] = offdiag_cov_mass(emb.detach())
    parts["loss"] = loss.item()
    return loss, parts


def save_checkpoint(
    path: Path,
    model: WorldModel,
    probe: ToolProbe,
    opt,
    step: int,
    mcfg: ModelConfig,
    tcfg: TrainConfig,
) -> None:
    """Atomic save: weights, optimiser, step and both configs, with a format version."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(
        {
            "version": CHECKPOINT_VERSION,
            "step": step,
            "model_config": dataclasses.asdict(mcfg),
            "train_config": dataclasses.asdict(tcfg),
            "model": model.state_dict(),
            "probe": probe.state_dict(),
            "optimizer": opt.state_dict(),
        },
        tmp,
    )
    os.replace(tmp, path)


def _set_trainable(obj: Objective, mcfg: ModelConfig, tcfg: TrainConfig) -> None:
    """Freeze what this mode and objective do not train (DDP needs every trained weight used)."""
    m = obj.model
    m.requires_grad_(True)
    obj.probe.requires_grad_(tcfg.mode != "world-model")
    if m.target_encoder is not None:
        m.target_encoder.requires_grad_(False)
    if tcfg.mode == "world-model":
        m.encoder.requires_grad_(False)
    if tcfg.mode == "encoder":
        m.predictor.proprio.requires_grad_(False)
    if mcfg.collapse != "vicreg" or mcfg.objective == "generative" or tcfg.mode == "world-model":
        m.expander.requires_grad_(False)


@dataclass
class TrainResult:
    summary: dict
    model: WorldModel  # this process's in-memory model (identical on every DDP rank)


def train(
    data: Path, out: Path, mcfg: ModelConfig, tcfg: TrainConfig, progress: bool = True
) -> TrainResult:
    """Train (or resume from ``out/last.pt``); returns the summary and model. Runs unchanged under
    ``torchrun --nproc_per_node N`` (DistributedSampler + DDP, gloo on CPU)."""
    device = resolve_device(tcfg.device)
    rank, world = _dist()
    torch.manual_seed(tcfg.seed)
    out = Path(out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    ds = WindowDataset(data, tcfg.horizon, mcfg.image_size)
    obj = Objective(mcfg, tcfg)
    model, probe = obj.model, obj.probe
    ckpt = out / "last.pt"
    if not ckpt.exists() and tcfg.init:
        init = read_checkpoint(Path(tcfg.init))
        if model_config_of(init) != mcfg:
            raise CheckpointError(
                f"{tcfg.init}: model config {model_config_of(init)} differs from this run's {mcfg}"
            )
        load_weights(model, init["model"], tcfg.init)
        if "probe" in init:
            probe.load_state_dict(init["probe"])
        log.info("initialised from %s", tcfg.init)
    elif not ckpt.exists() and tcfg.mode == "world-model":
        raise CheckpointError("mode world-model trains on a frozen encoder: pass --init CKPT")
    _set_trainable(obj, mcfg, tcfg)
    obj.to(device)
    opt = torch.optim.AdamW(
        [p for p in obj.parameters() if p.requires_grad], lr=tcfg.lr, weight_decay=tcfg.weight_decay
    )
    step = 0
    if ckpt.exists():
        state = read_checkpoint(ckpt)
        model.load_state_dict(state["model"])
        probe.load_state_dict(state["probe"])
        opt.load_state_dict(state["optimizer"])
        step = int(state["step"])
        log.info("resumed from %s at step %d", ckpt, step)
    net = DistributedDataParallel(obj) if world > 1 else obj
    log.info("training on %s (world size %d)", device, world)
    sampler = (
        DistributedSampler(ds, world, rank, shuffle=True, seed=tcfg.seed) if world > 1 else None
    )
    # a GPU step outruns single-process batching; on CPU, workers would steal the step's cores
    workers = min(4, (os.cpu_count() or 1) - 1) if device.type == "cuda" else 0
    loader = DataLoader(
        ds,
        batch_size=tcfg.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        generator=torch.Generator().manual_seed(tcfg.seed + step),
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
    )
    fh = writer = None
    if rank == 0:
        log_path = out / "metrics.csv"
        header_needed = not log_path.exists()
        fh = open(log_path, "a", newline="")  # noqa: SIM115 - closed after the loop
        writer = csv.writer(fh)
    t0, samples, epoch, parts = time.perf_counter(), 0, 0, {}
    bar = tqdm(total=tcfg.steps, initial=step, desc="train", disable=not progress or rank != 0)
    while step < tcfg.steps:
        if sampler is not None:
            sampler.set_epoch(epoch)
        for img, prop, act in loader:
            img, prop, act = (x.to(device, non_blocking=True) for x in (img, prop, act))
            log_now = step + 1 == tcfg.steps or (step + 1) % tcfg.log_every == 0
            loss, parts = net(img, prop, act, with_metrics=log_now)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if mcfg.collapse == "ema":
                ema_update(model.target_encoder, model.encoder, mcfg.ema_momentum)
            step += 1
            samples += img.shape[0] * world
            bar.update()
            if writer is not None and log_now:
                if header_needed:
                    writer.writerow(["step", *parts])
                    header_needed = False
                writer.writerow([step, *(f"{v:.6g}" for v in parts.values())])
                fh.flush()
            if rank == 0 and (step % tcfg.ckpt_every == 0 or step == tcfg.steps):
                save_checkpoint(ckpt, model, probe, opt, step, mcfg, tcfg)
            if step >= tcfg.steps:
                break
        epoch += 1
    bar.close()
    wall = time.perf_counter() - t0
    summary = {
        "steps": step,
        "world_size": world,
        "device": str(device),
        "windows": len(ds),
        "bad_shards": len(ds.skipped),
        "samples_per_s": samples / max(wall, 1e-9),
        "wall_s": wall,
        "final": parts,
    }
    if rank == 0:
        fh.close()
        with torch.no_grad():  # final per-dimension std on one batch, for the plot
            img = next(iter(loader))[0].to(device)
            emb = model.encode(img.flatten(0, 1).float() / 255.0).flatten(0, 1)  # [M, D]
        summary["plots"] = [p.name for p in plot_run(out, emb.std(dim=0).cpu().numpy())]
        (out / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return TrainResult(summary, model)
