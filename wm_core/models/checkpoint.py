"""Checkpoint files: a versioned dict with the model config and weights.

``last.pt`` from ``wm train`` also carries the optimiser and step (for resuming); a shipped
model (``models/*/model.pt``) carries only what inference needs. Both load with
:func:`load_checkpoint`, which names the versions or shapes when they do not fit.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from wm_core.models.config import ModelConfig
from wm_core.models.world_model import WorldModel

CHECKPOINT_VERSION = 2  # 2: proprioception head reads the mean patch latent (not the trunk)


TRAINING_ONLY = ("target_encoder.", "expander.")  # not needed for inference; not shipped


class CheckpointError(ValueError):
    """Missing or incompatible checkpoint; names the versions or shapes involved."""


def read_checkpoint(path: Path) -> dict:
    """The raw checkpoint dict, with its version checked."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # boundary for untrusted bytes: any failure is a clear error
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from exc
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        got = state.get("version") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path}: checkpoint version {got}, expected {CHECKPOINT_VERSION}")
    return state


def model_config_of(state: dict) -> ModelConfig:
    return ModelConfig(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in state["model_config"].items()}
    )


def load_weights(model: WorldModel, weights: dict, source: str | Path) -> None:
    """Load ``weights`` into ``model``, naming the first tensor whose shape does not fit."""
    own = model.state_dict()
    for k, v in weights.items():
        if k in own and own[k].shape != v.shape:
            raise CheckpointError(
                f"{source}: {k} has shape {list(v.shape)}, the model config "
                f"expects {list(own[k].shape)}"
            )
    missing = sorted(k for k in set(own) - set(weights) if not k.startswith(TRAINING_ONLY))
    if missing:
        raise CheckpointError(f"{source}: missing weights {missing[:3]}...")
    model.load_state_dict(weights, strict=False)
    if model.target_encoder is not None and not any(k.startswith("target_") for k in weights):
        model.target_encoder.load_state_dict(model.encoder.state_dict())


def load_checkpoint(path: Path) -> WorldModel:
    """A :class:`WorldModel` in eval mode from ``path``."""
    state = read_checkpoint(path)
    model = WorldModel(model_config_of(state))
    load_weights(model, state["model"], path)
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
