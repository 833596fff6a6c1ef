"""Shared fixtures for the world-model tests: a tiny model config and tiny shard sets."""

from pathlib import Path

import pytest

from wm_core.data.collect import CollectConfig, collect
from wm_core.models import ModelConfig
from wm_core.sim import SceneConfig


@pytest.fixture(scope="session")
def tiny_cfg() -> ModelConfig:
    """A model small enough to train for a few steps in a test."""
    return ModelConfig(
        image_size=64,
        enc_channels=(8, 8, 8, 8),
        latent_dim=8,
        pred_channels=16,
        pred_blocks=1,
        expander_dim=32,
    )


@pytest.fixture(scope="session")
def make_tiny_shards():
    """Return a function that collects a few short 64 px one-object episodes into a dir."""

    def make(out: Path, episodes: int = 2, steps: int = 12) -> Path:
        collect(
            out,
            episodes,
            1,
            0,
            SceneConfig(n_objects=1),
            CollectConfig(steps_per_episode=steps, image_size=64),
            progress=False,
        )
        return out

    return make
