"""``wm compare``: several policies on the same seeds in one run -> table, bar chart, videos.

Each entry is a policy plus options (the ablations are latent-mpc with a world model swapped
or the guardrail costs off). Writes ``DIR/<entry>/report.json`` (+ ``episode0.mp4``),
``DIR/compare.md``, ``DIR/compare.png`` and ``DIR/compare.json``; with ``readme=PATH`` it
also replaces the table between the ``<!-- compare:begin -->`` / ``<!-- compare:end -->``
markers in that file.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from wm_core.eval.runner import evaluate
from wm_core.models.checkpoint import CheckpointError
from wm_core.paths import inside
from wm_core.sim import SceneConfig

log = logging.getLogger(__name__)

ENTRIES: dict[str, tuple[str, dict]] = {
    "oracle": ("oracle", {}),
    "random": ("random", {}),
    "latent-mpc-cem": ("latent-mpc", {"planner": "cem"}),
    "latent-mpc-mppi": ("latent-mpc", {"planner": "mppi"}),
    "latent-mpc-gradient": ("latent-mpc", {"planner": "gradient"}),
    "ablation-copy-last": ("latent-mpc", {"world_model": "copy-last"}),
    "ablation-random-weights": ("latent-mpc", {"world_model": "random"}),
    "ablation-generative": ("latent-mpc", {"world_model": "generative"}),
    "ablation-no-guardrail-costs": ("latent-mpc", {"guardrails": False}),
}
BEGIN, END = "<!-- compare:begin -->", "<!-- compare:end -->"


def _fmt(v, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def compare_table(rows: dict[str, dict], episodes: int, seed: int, cfg: SceneConfig) -> str:
    head = (
        f"Same seeds for every row: {seed}..{seed + episodes - 1}, {cfg.n_objects} objects, "
        f"camera jitter {cfg.camera_jitter_deg:g} deg, light jitter {cfg.light_jitter:g}.\n\n"
        "| policy | clear rate | full clears | safety violations | filter holds/rejects "
        "| surprise events | plan p50 / p99 (ms) | policy Hz |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for name, r in rows.items():
        if "not_run" in r:
            lines.append(f"| {name} | not run: {r['not_run']} |" + " |" * 6)
            continue
        f = r.get("safety_filter", {})
        blocked = sum(f.get(k, 0) for k in ("rejected", "hold_stale", "hold_nan", "estop"))
        lines.append(
            f"| {name} | {r['clear_rate']:.3f} | {r['full_clear_rate']:.3f} "
            f"| {r['safety_violations_total']} | {blocked} | {r.get('surprise_events', '-')} "
            f"| {_fmt(r.get('plan_latency_ms_p50'), '.1f')} / "
            f"{_fmt(r.get('plan_latency_ms_p99'), '.1f')} | {_fmt(r.get('planner_hz'), '.1f')} |"
        )
    return head + "\n".join(lines) + "\n"


def bar_chart(rows: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in rows if "not_run" not in rows[n]]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(names)), 4))
    ax.bar(names, [rows[n]["clear_rate"] for n in names], color="tab:blue")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("clear rate")
    for i, n in enumerate(names):
        v = rows[n]["safety_violations_total"]
        ax.text(i, rows[n]["clear_rate"] + 0.02, f"{v} viol.", ha="center", fontsize=8)
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def replace_between_markers(path: Path, text: str) -> None:
    doc = path.read_text()
    if BEGIN not in doc or END not in doc:
        raise ValueError(f"{path} has no {BEGIN} ... {END} markers")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{text}{END}{tail}")


PACKAGE = Path(__file__).resolve().parents[1]  # wm_core
MODELS = PACKAGE.parent / "models"
STAMP = "compare_stamp.json"


def code_stamp() -> str:
    """A hash of everything a compare row depends on: the wm_core sources and the shipped
    models. A report made by other code or other weights is not reused."""
    h = hashlib.sha256()
    files = sorted(PACKAGE.rglob("*.py")) + sorted(MODELS.glob("*/*.pt"))
    for f in files:
        h.update(str(f.relative_to(PACKAGE.parent)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _finished(path: Path, episodes: int, seed: int, cfg: SceneConfig) -> dict | None:
    """A report from an earlier run of this entry with the same seeds, scene, code and
    models (an interrupted compare resumes where it stopped), if any."""
    if not path.is_file():
        return None
    try:
        r = json.loads(path.read_text())
        stamp = json.loads((path.parent / STAMP).read_text())
    except (OSError, ValueError):
        return None
    if stamp.get("code") != code_stamp():
        return None
    same = (
        r.get("episodes") == episodes
        and r.get("seed") == seed
        and r.get("objects_per_episode") == cfg.n_objects
        and r.get("camera_jitter_deg") == cfg.camera_jitter_deg
        and r.get("light_jitter") == cfg.light_jitter
        and r.get("max_episode_s") == cfg.max_episode_s
    )
    return r if same else None


def compare(
    entries: list[str],
    episodes: int,
    seed: int,
    cfg: SceneConfig,
    out: Path,
    video: str = "annotated",
    progress: bool = True,
    readme: Path | None = None,
    fresh: bool = False,
) -> dict[str, dict]:
    """Run (or, unless ``fresh``, reuse the finished report of) each entry on the same seeds."""
    unknown = [e for e in entries if e not in ENTRIES]
    if unknown:
        raise KeyError(f"unknown compare entries {unknown}; choose from {sorted(ENTRIES)}")
    rows = {}
    for name in entries:
        policy, options = ENTRIES[name]
        entry_dir = inside(out, name)
        done = None if fresh else _finished(entry_dir / "report.json", episodes, seed, cfg)
        if done is not None:
            log.info("compare: %s already run with these settings; reusing its report", name)
            rows[name] = done
            continue
        log.info("compare: %s", name)
        try:
            rows[name] = evaluate(
                policy, episodes, seed, cfg, entry_dir, video, progress, policy_options=options
            )
            (entry_dir / STAMP).write_text(json.dumps({"code": code_stamp()}) + "\n")
        except CheckpointError as exc:  # e.g. the generative baseline was never trained
            log.warning("compare: %s not run: %s", name, exc)
            rows[name] = {"not_run": str(exc)}
    table = compare_table(rows, episodes, seed, cfg)
    (out / "compare.md").write_text(table)
    (out / "compare.json").write_text(json.dumps(rows, indent=2) + "\n")
    bar_chart(rows, out / "compare.png")
    if readme is not None:
        replace_between_markers(readme, table)
    return rows
