"""``python -m wm_bringup sim|real [--mode inprocess|processes] [--backend ...]``."""

from __future__ import annotations

import argparse
import logging

import yaml

from wm_bringup.runner import MODES, up
from wm_bringup.stack import BACKENDS, PROFILES


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m wm_bringup",
        description="Run the wm ROS 2 stack from its stack description (no `ros2 launch`).",
    )
    ap.add_argument("profile", choices=PROFILES)
    ap.add_argument("--mode", choices=MODES, default="processes")
    ap.add_argument("--backend", choices=BACKENDS, default="torch")
    ap.add_argument("--params-file", default=None, help="default: wm_bringup config/stack.yaml")
    ap.add_argument("--seconds", type=float, default=None, help="stop after this long (wall)")
    ap.add_argument("--seed", type=int, default=None, help="first episode seed (sim)")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NODE:KEY=VALUE",
        help="override one node parameter (repeatable), e.g. wm_planner:samples=128",
    )
    args = ap.parse_args(argv)
    overrides: dict[str, dict] = {}
    for item in args.set:
        node, sep, rest = item.partition(":")
        key, eq, value = rest.partition("=")
        if not (sep and eq and node and key):
            ap.error(f"--set {item!r} must look like NODE:KEY=VALUE")
        overrides.setdefault(node, {})[key] = yaml.safe_load(value)
    logging.basicConfig(level=logging.INFO, format="[wm_bringup] %(message)s")
    return up(
        args.profile,
        mode=args.mode,
        backend=args.backend,
        params_file=args.params_file,
        seconds=args.seconds,
        seed=args.seed,
        overrides=overrides,
    )


if __name__ == "__main__":
    raise SystemExit(main())
