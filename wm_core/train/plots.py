"""PNG plots of a training run: losses, per-dimension std, RankMe, covariance off-diagonal."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless; set before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

LOSS_KEYS = (
    "loss",
    "tf_latent",
    "rollout_latent",
    "proprio",
    "tool_probe",
    "vicreg_var",
    "vicreg_cov",
)


def read_metrics(path: Path) -> dict[str, np.ndarray]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {k: np.array([float(r[k]) for r in rows]) for k in (rows[0] if rows else {})}


def plot_run(run: Path, dim_std: np.ndarray | None = None) -> list[Path]:
    """Write losses.png, rankme.png, offdiag.png (and dim_std.png) into ``run``."""
    m = read_metrics(run / "metrics.csv")
    if not m:
        return []
    step, out = m["step"], []

    def save(name: str, title: str, ylabel: str, series: dict[str, np.ndarray], log=False):
        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
        for k, v in series.items():
            ax.plot(step, v, label=k)
        ax.set(title=title, xlabel="step", ylabel=ylabel)
        if log:
            ax.set_yscale("log")
        if len(series) > 1:
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(run / name)
        plt.close(fig)
        out.append(run / name)

    save("losses.png", "losses", "value", {k: m[k] for k in LOSS_KEYS if k in m}, log=True)
    save(
        "rankme.png",
        "effective rank (RankMe) of patch embeddings",
        "rank",
        {"effective_rank": m["effective_rank"]},
    )
    save(
        "offdiag.png",
        "covariance off-diagonal mass (mean |corr|)",
        "mass",
        {"offdiag_cov_mass": m["offdiag_cov_mass"]},
    )
    if dim_std is not None:
        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
        ax.bar(np.arange(len(dim_std)), dim_std)
        ax.axhline(0.05, color="r", lw=1, label="collapse threshold 0.05")
        ax.set(title="per-dimension std of patch embeddings (final)", xlabel="dim", ylabel="std")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(run / "dim_std.png")
        plt.close(fig)
        out.append(run / "dim_std.png")
    return out
