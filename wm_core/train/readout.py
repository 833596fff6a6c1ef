"""``wm train readout``: fit the object readout probe on a trained model's frozen latents.

Uses ``label/object_pos``: the privileged label of simulation shards, or the robot's own labels
from its grips in shards imported with ``wm import-bag --objects N`` (probes are fitted on
labels; the encoder never saw them). Writes ``OUT/readout.pt``; the planner loads it beside
the model.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from wm_core.cell import Workcell, sim_cell
from wm_core.config import short_repr
from wm_core.data.shards import scan_shards
from wm_core.models import WorldModel
from wm_core.models.checkpoint import CheckpointError, load_untrusted
from wm_core.models.readout import (
    READOUT_SOURCES,
    READOUT_VERSION,
    ObjectReadout,
    cell_priors,
    fit_readout,
    position_r2,
    readout_targets,
)

log = logging.getLogger(__name__)


def source_shape(model: WorldModel, source: str = "latent") -> tuple[int, int]:
    """(grid side, channels) of the map a readout of ``source`` reads."""
    if source not in READOUT_SOURCES:
        raise ValueError(f"readout source {source!r} must be one of {list(READOUT_SOURCES)}")
    stage, cfg = READOUT_SOURCES[source], model.cfg
    if stage is None:
        return cfg.grid, cfg.latent_dim
    return cfg.image_size // 2**stage, cfg.enc_channels[stage - 1]


def priors_for(
    model: WorldModel, cell: Workcell | None = None, source: str = "latent"
) -> np.ndarray:
    """[G, G, 3] per-patch priors: where each patch's centre ray meets the cell's table top,
    for the cell's camera (default: the sim cell) with its image squashed to the model's
    input; G is the grid of the map ``source`` names."""
    cfg, cell = model.cfg, cell or sim_cell()
    cam = cell.camera
    k = cam.k_for(cfg.image_size)
    grid = source_shape(model, source)[0]
    return cell_priors(k, cam.pose, cfg.image_size, grid, cell.table.top_z)


def new_readout(
    model: WorldModel, hidden: int = 0, cell: Workcell | None = None, source: str = "latent"
) -> ObjectReadout:
    grid, channels = source_shape(model, source)
    return ObjectReadout(channels, grid, priors_for(model, cell, source), hidden, source)


def targets_for(
    model: WorldModel, obj_pos: np.ndarray, cell: Workcell | None = None, source: str = "latent"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Object centres [M, K, 3] -> (objectness [M, G, G], positions [M, G, G, 3]) tensors."""
    cfg = model.cfg
    cam = (cell or sim_cell()).camera
    k = cam.k_for(cfg.image_size)
    grid = source_shape(model, source)[0]
    occ, pos = readout_targets(obj_pos, k, cam.pose, cfg.image_size, grid)
    return torch.from_numpy(occ), torch.from_numpy(pos)


@torch.no_grad()
def encode_frames(
    model: WorldModel, images: np.ndarray, batch: int = 256, source: str = "latent"
) -> torch.Tensor:
    """uint8 images [M, S, S, 3] -> the maps a readout of ``source`` reads: latents [M, N, D],
    or an encoder stage's finer map [M, G'*G', C]."""
    stage = READOUT_SOURCES[source]
    out = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(images[i : i + batch]).permute(0, 3, 1, 2).float() / 255.0
        out.append(model.encode(x) if stage is None else model.encode_tap(x, stage)[1])
    return torch.cat(out)


def episode_cell(episode, cell: Workcell | None = None) -> Workcell:
    """The cell whose camera took this episode's frames: the recorded true camera pose
    (``label/camera_pose``, a jittered scene's) when the shard has one, else the cell's; and
    the episode's table height (``meta['table_top_z']``, a randomised scene's) when recorded."""
    cell = cell or sim_cell()
    top_z = episode.meta.get("table_top_z")
    recorded = isinstance(top_z, int | float) and not isinstance(top_z, bool)
    if recorded and np.isfinite(top_z) and top_z != cell.table.top_z:
        cell = cell.with_table_height(float(top_z))
    pose = (episode.labels or {}).get("camera_pose")
    if pose is None:
        return cell
    pose = tuple(tuple(float(v) for v in row) for row in np.asarray(pose, np.float64))
    return cell.with_camera(dataclasses.replace(cell.camera, T_world_cam=pose))


def train_readout(
    model: WorldModel,
    data: Path,
    out: Path,
    stride: int = 2,
    steps: int = 3000,
    seed: int = 0,
    hidden: int = 64,
    cell: Workcell | None = None,
    source: str = "latent",
    batch: int = 512,
) -> dict:
    """Fit on every ``stride``-th labelled frame of the shards in ``data`` (the last tenth of
    the episodes held out for the reported R^2). ``cell``: the work cell whose camera took the
    frames (default: the sim cell). The labels are the simulator's, or a robot's own from its
    grips (``meta['object_pos_source']``, counted in the summary). ``source``: the map it reads
    (the latent, or a finer encoder stage: ``wm_core.models.readout.READOUT_SOURCES``)."""
    source_shape(model, source)  # a bad source fails before the data is read
    episodes, errors = scan_shards(data, with_labels=True)
    episodes = [e for e in episodes if "object_pos" in (e.labels or {}) and "image" in e.obs]
    if len(episodes) < 2:
        raise ValueError(f"{data}: need >= 2 labelled episodes, found {len(episodes)}")
    n_test = max(1, len(episodes) // 10)
    split = {"train": episodes[:-n_test], "test": episodes[-n_test:]}
    tensors = {}
    base = cell or sim_cell()
    posed = sum("camera_pose" in (e.labels or {}) for e in episodes)
    for name, eps in split.items():
        zs, occs, poss, priors = [], [], [], []
        for e in eps:
            # Targets and priors from the camera that took the frames: a jittered scene's
            # objects sit in other patches than the nominal camera would put them in.
            cell = episode_cell(e, base)
            z = encode_frames(model, e.obs["image"][::stride], source=source)  # [m, N, C]
            occ, pos = targets_for(model, e.labels["object_pos"][::stride], cell, source)
            zs.append(z)
            occs.append(occ)
            poss.append(pos)
            prior = torch.as_tensor(priors_for(model, cell, source))  # [G, G, 3]
            priors.append(prior.expand(len(z), *prior.shape))  # [m, G, G, 3]
        tensors[name] = (torch.cat(zs), torch.cat(occs), torch.cat(poss), torch.cat(priors))
    readout = new_readout(model, hidden, source=source)
    z, occ, pos, priors = tensors["train"]
    fit = fit_readout(readout, z, occ, pos, steps=steps, batch=batch, seed=seed, priors=priors)
    r2, err = position_r2(readout, *tensors["test"])
    summary = {
        "source": source,
        "grid": readout.grid,
        "frames_train": int(tensors["train"][0].shape[0]),
        "frames_test": int(tensors["test"][0].shape[0]),
        "episodes_with_camera_pose": int(posed),
        "cell": base.source or base.name,
        "label_sources": dict(
            Counter(e.meta.get("object_pos_source", "simulator") for e in episodes)
        ),
        "bad_shards": len(errors),
        "final_loss": fit,
        "test_position_r2": r2,
        "test_position_err_cm": err * 100,
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "readout.pt.tmp"
    torch.save(
        {
            "version": READOUT_VERSION,
            "hidden": hidden,
            "source": source,
            "state": readout.state_dict(),
            "summary": summary,
        },
        tmp,
    )
    os.replace(tmp, out / "readout.pt")
    return summary


def load_readout(path: Path, model: WorldModel, cell: Workcell | None = None) -> ObjectReadout:
    """The fitted readout, its per-patch priors recomputed for the cell (default: the sim
    cell), so that a calibrated camera maps patches onto this cell's table."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"object readout {path} does not exist (make it: wm train readout)")
    state = load_untrusted(path, "object readout")
    if not isinstance(state, dict) or state.get("version") != READOUT_VERSION:
        got = state.get("version") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"{path}: readout version {short_repr(got)}, expected {READOUT_VERSION}"
        )
    hidden = state.get("hidden", 0)
    if isinstance(hidden, bool) or not isinstance(hidden, int) or not 0 <= hidden <= 4096:
        raise CheckpointError(f"{path}: readout hidden={short_repr(hidden)} is not in [0, 4096]")
    source = state.get("source", "latent")
    if not isinstance(source, str) or source not in READOUT_SOURCES:
        raise CheckpointError(
            f"{path}: readout source {short_repr(source)} is not one of {list(READOUT_SOURCES)}"
        )
    readout = new_readout(model, hidden, source=source)
    own = readout.state_dict()
    weights = state.get("state")
    if not isinstance(weights, dict):
        raise CheckpointError(f"{path}: readout weights are {type(weights).__name__}")
    for k, v in weights.items():
        if not isinstance(v, torch.Tensor) or k not in own or own[k].shape != v.shape:
            want = list(own[k].shape) if k in own else "no such weight"
            got = list(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
            name = k if isinstance(k, str) else short_repr(k)
            raise CheckpointError(
                f"{path}: readout weight {name} has shape {got}, this model needs {want}"
            )
    try:
        readout.load_state_dict(weights)
    except RuntimeError as exc:  # missing keys
        raise CheckpointError(f"{path}: {str(exc).splitlines()[0]}") from None
    readout.priors.copy_(torch.as_tensor(priors_for(model, cell, source)))
    return readout.eval()
