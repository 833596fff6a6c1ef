"""Checkpoint files: a versioned dict with the model config and weights.

``last.pt`` from ``wm train`` also carries the optimiser and step (for resuming); a shipped
model (``models/*/model.pt``) carries only what inference needs. Both load with
:func:`load_checkpoint`, which names the versions or shapes when they do not fit.
"""

from __future__ import annotations

import dataclasses
import pickle
import re
from pathlib import Path

import torch

from wm_core.config import ConfigError, from_mapping, short_repr
from wm_core.models.config import ModelConfig
from wm_core.models.world_model import WorldModel

CHECKPOINT_VERSION = 2  # 2: proprioception head reads the mean patch latent (not the trunk)


TRAINING_ONLY = ("target_encoder.", "expander.")  # not needed for inference; not shipped


class CheckpointError(ValueError):
    """Missing or incompatible checkpoint; names the versions or shapes involved."""


def load_untrusted(path: Path, what: str = "checkpoint") -> object:
    """``torch.load`` of a file that may be hostile: tensors and plain containers only
    (``weights_only=True``: a pickle that would import or call anything else is refused, never
    run). Any failure is one :class:`CheckpointError` line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # boundary for untrusted bytes: any failure is a clear error
        raise CheckpointError(
            f"{path}: not a valid or safe {what}; refused ({_load_failure(exc)})"
        ) from None


def _load_failure(exc: Exception) -> str:
    """Why torch.load failed, in a few words. torch's own text is several paragraphs that end
    in advice to turn the protection off (weights_only=False); none of it is passed on."""
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError):
        name = re.search(r"GLOBAL ([\w.]+)", text)
        if name:
            return f"its pickle would import {name.group(1)}"
        return "its pickle holds something other than tensors and plain data"
    first = text.strip().splitlines()[0] if text.strip() else ""
    if "weights_only" in first or "pickle" in first.lower():
        first = ""
    first = first if len(first) <= 120 else first[:117] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def read_checkpoint(path: Path) -> dict:
    """The raw checkpoint dict, with its version checked."""
    path = Path(path)
    state = load_untrusted(path)
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        got = state.get("version") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"{path}: checkpoint version {short_repr(got)}, expected {CHECKPOINT_VERSION}"
        )
    return state


def model_config_of(state: dict, source: str | Path = "checkpoint") -> ModelConfig:
    try:
        return from_mapping(ModelConfig, state.get("model_config"), f"{source}: model_config")
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None


def load_weights(model: WorldModel, weights: dict, source: str | Path) -> None:
    """Load ``weights`` into ``model``, naming the first tensor whose shape does not fit."""
    check_weights(model.state_dict(), weights, source)
    model.load_state_dict(weights, strict=False)
    if model.target_encoder is not None and not any(k.startswith("target_") for k in weights):
        model.target_encoder.load_state_dict(model.encoder.state_dict())


def check_weights(own: dict, weights: object, source: str | Path) -> None:
    """``weights`` must be a mapping of names to tensors that fits ``own`` (a state dict)."""
    if not isinstance(weights, dict):
        raise CheckpointError(f"{source}: weights are {type(weights).__name__}, not a mapping")
    for k, v in weights.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise CheckpointError(f"{source}: weight {short_repr(k)} is not a named tensor")
        if k in own and own[k].shape != v.shape:
            raise CheckpointError(
                f"{source}: {k} has shape {list(v.shape)}, the model config "
                f"expects {list(own[k].shape)}"
            )
        if k in own and own[k].dtype.is_floating_point and not v.dtype.is_floating_point:
            raise CheckpointError(f"{source}: {k} is {v.dtype}, expected floating point")
    missing = sorted(k for k in set(own) - set(weights) if not k.startswith(TRAINING_ONLY))
    if missing:
        raise CheckpointError(f"{source}: missing weights {missing[:3]}...")


def load_checkpoint(path: Path) -> WorldModel:
    """A :class:`WorldModel` in eval mode from ``path``."""
    state = read_checkpoint(path)
    cfg = model_config_of(state, path)
    weights = state.get("model")
    # shapes first, on a model without storage: a tampered config cannot make us allocate
    # more than the weights that the file really holds
    with torch.device("meta"):
        check_weights(WorldModel(cfg).state_dict(), weights, path)
    model = WorldModel(cfg)
    load_weights(model, weights, path)
    return model.eval()


def save_inference_checkpoint(path: Path, model: WorldModel, extra: dict | None = None) -> None:
    """Weights and config only (no optimiser, no EMA target, no expander): what ships."""
    keep = {k: v for k, v in model.state_dict().items() if not k.startswith(TRAINING_ONLY)}
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    torch.save(
        {
            "version": CHECKPOINT_VERSION,
            "model_config": dataclasses.asdict(model.cfg),
            "model": keep,
            **(extra or {}),
        },
        tmp,
    )
    tmp.replace(path)
