#!/usr/bin/env python
"""Run the hostile-input fuzz targets with N cases each and write ``OUT/fuzz.json``.

The targets are the ``TARGETS`` of the fuzz test modules (tests/**/test_fuzz_*.py and
tests/wm_core/test_paths.py); each case must end in a valid result or a one-line clean error
(see tests/fuzzlib.py). Usage::

    .venv/bin/python scripts/fuzz.py --cases 10000 --out out/fuzz [--only bag,shards] [--seed 1]

Prints one line per target (cases, clean errors, valid results, seconds) and exits 1 if any
target crashed; the falsifying example of each crash is in fuzz.json.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = {
    "test_fuzz_msgs": ROOT / "tests" / "ros_ws",
    "test_fuzz_config": ROOT / "tests" / "wm_core",
    "test_fuzz_shards": ROOT / "tests" / "wm_core" / "data",
    "test_fuzz_bag_import": ROOT / "tests" / "wm_core" / "data",
    "test_fuzz_checkpoint": ROOT / "tests" / "wm_core" / "models",
    "test_paths": ROOT / "tests" / "wm_core",
    "test_fuzz_calib": ROOT / "tests" / "wm_core" / "calib",
}


def _paths() -> None:
    # the worktree's code first (an installed wm_core may point at another checkout)
    for p in [*sorted(set(MODULES.values())), ROOT / "tests" / "ros_ws", ROOT / "tests", ROOT]:
        sys.path.insert(0, str(p))


def targets(only: list[str]) -> list:
    found = []
    for name in MODULES:
        for t in importlib.import_module(name).TARGETS:
            if not only or any(t.name.startswith(o) for o in only):
                found.append(t)
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000, help="cases per target")
    ap.add_argument("--out", default="out/fuzz", help="directory for fuzz.json")
    ap.add_argument("--only", default="", help="comma-separated target name prefixes")
    ap.add_argument("--seed", type=int, default=None, help="hypothesis seed (default random)")
    args = ap.parse_args()
    if args.cases < 1:
        ap.error("--cases must be >= 1")
    os.environ.setdefault("MUJOCO_GL", "egl")
    warnings.filterwarnings("ignore")  # torch's pickle-protocol notes, numpy casts
    _paths()
    from fuzzlib import run_target

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    only = [o.strip() for o in args.only.split(",") if o.strip()]
    results = []
    t0 = time.time()
    print(f"{'target':<28}{'cases':>8}{'clean':>8}{'valid':>8}{'crashes':>9}{'seconds':>9}")
    for target in targets(only):
        r = run_target(target, args.cases, rng_seed=args.seed, raise_on_failure=False)
        results.append(r)
        crashes = 1 if r.failure else 0
        print(
            f"{r.target:<28}{r.cases:>8}{r.clean_errors:>8}{r.valid:>8}{crashes:>9}"
            f"{r.seconds:>9.1f}",
            flush=True,
        )
        if r.failure:
            print("  " + r.failure.replace("\n", "\n  "), flush=True)
    report = {
        "cases_per_target": args.cases,
        "seed": args.seed,
        "python": platform.python_version(),
        "seconds": round(time.time() - t0, 1),
        "targets": {r.target: r.to_json() for r in results},
        "crashed_targets": [r.target for r in results if r.failure],
    }
    (out / "fuzz.json").write_text(json.dumps(report, indent=2) + "\n")
    total = sum(r.cases for r in results)
    bad = report["crashed_targets"]
    print(f"{len(results)} targets, {total} cases, {len(bad)} crashed; {out / 'fuzz.json'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
