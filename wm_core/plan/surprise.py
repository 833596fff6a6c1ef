"""Surprise: how far the observed latent is from the one the world model predicted.

Each step the policy predicts the next latent for the action it sends; on the next frame this
monitor compares the prediction with the encoding of what the camera actually saw. The raw
error is the *largest per-patch* mean squared error (a local event, such as an object that
jumps, touches a few patches and would vanish in a mean over all of them), divided by a
running baseline of that error, so the score is about 1 in normal operation and does not
depend on the model's latent scale. The baseline only learns from unsurprising steps.
"""

from __future__ import annotations

import torch


class SurpriseMonitor:
    def __init__(self, threshold: float, warmup: int = 5, momentum: float = 0.9):
        self.threshold, self.warmup, self.momentum = threshold, warmup, momentum
        self.reset()

    def reset(self) -> None:
        self.predicted: torch.Tensor | None = None  # [N, D]
        self.baseline: float | None = None
        self.seen = 0
        self.active = False
        self.events = 0
        self.last_score = 0.0

    def expect(self, z_next: torch.Tensor) -> None:
        """Store the model's prediction [1, N, D] for the next observation."""
        self.predicted = z_next.detach().reshape(z_next.shape[-2:])

    def observe(self, z: torch.Tensor) -> float:
        """Score the observed latent [1, N, D] against the stored prediction; updates the
        event count (rising edges above the threshold). Returns the score (0 if none)."""
        if self.predicted is None:
            return 0.0
        err = float(((z.reshape(self.predicted.shape) - self.predicted) ** 2).mean(-1).max())
        self.predicted = None
        self.seen += 1
        if self.baseline is None:
            self.baseline = err
        score = err / max(self.baseline, 1e-12)
        surprised = self.seen > self.warmup and score > self.threshold
        if not surprised:  # learn the normal level from normal steps only
            self.baseline = self.momentum * self.baseline + (1 - self.momentum) * err
        if surprised and not self.active:
            self.events += 1
        self.active = surprised
        self.last_score = score if self.seen > self.warmup else 0.0
        return self.last_score
