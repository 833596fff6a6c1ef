"""Render one or more ``report.json`` files as a Markdown table.

``python -m wm_core.eval.markdown out/oracle/report.json out/random/report.json``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

COLUMNS = (
    ("policy", "policy", "{}"),
    ("episodes", "episodes", "{}"),
    ("objects/ep", "objects_per_episode", "{}"),
    ("clear rate", "clear_rate", "{:.3f}"),
    ("full clears", "full_clear_rate", "{:.2f}"),
    ("dropped", "objects_dropped", "{}"),
    ("safety events", "safety_violations_total", "{}"),
    ("episode sim s", "mean_episode_sim_s", "{:.1f}"),
    ("step ms p50", "step_latency_ms_p50", "{:.2f}"),
    ("step ms p99", "step_latency_ms_p99", "{:.2f}"),
)


def reports_to_markdown(reports: list[dict]) -> str:
    head = "| " + " | ".join(c[0] for c in COLUMNS) + " |"
    rule = "|" + "---|" * len(COLUMNS)
    rows = [
        "| " + " | ".join(fmt.format(r[key]) for _, key, fmt in COLUMNS) + " |" for r in reports
    ]
    events = []
    for r in reports:
        nonzero = {k: v for k, v in r["safety_violations"].items() if v}
        events.append(f"- `{r['policy']}` safety events by kind: {nonzero or 'none'}")
    return "\n".join([head, rule, *rows, "", *events]) + "\n"


def main(argv: list[str] | None = None) -> int:
    paths = argv if argv is not None else sys.argv[1:]
    reports = [json.loads(Path(p).read_text()) for p in paths]
    sys.stdout.write(reports_to_markdown(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
