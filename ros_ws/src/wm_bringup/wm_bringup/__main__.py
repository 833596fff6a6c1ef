"""``python -m wm_bringup sim|real [NAME:=VALUE ...] [--mode inprocess|processes] [--backend ...]``.

``NAME:=VALUE`` are the profile's launch arguments (``wm_bringup.stack.arguments``), with the
same names and values as ``ros2 launch wm_bringup PROFILE.launch.py NAME:=VALUE``, e.g.
``python -m wm_bringup real shadow:=true cell_file:=configs/cells/mycell.yaml``."""

from __future__ import annotations

import argparse
import logging

import yaml

from wm_bringup.runner import MODES, up
from wm_bringup.stack import (
    BACKEND_CHOICES,
    GAZEBO_NEEDS_ROS2,
    PROFILES,
    describe,
    runner_arguments,
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m wm_bringup",
        description="Run the wm ROS 2 stack from its stack description (no `ros2 launch`).",
    )
    ap.add_argument("profile", choices=PROFILES)
    ap.add_argument(
        "arguments",
        nargs="*",
        metavar="NAME:=VALUE",
        help="launch arguments of the profile, as ros2 launch takes them (e.g. shadow:=true)",
    )
    ap.add_argument("--mode", choices=MODES, default="processes")
    ap.add_argument(
        "--backend", choices=BACKEND_CHOICES, default="", help="empty: the parameters file's"
    )
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
    args = ap.parse_intermixed_args(argv)
    overrides: dict[str, dict] = {}
    for item in args.set:
        node, sep, rest = item.partition(":")
        key, eq, value = rest.partition("=")
        if not (sep and eq and node and key):
            ap.error(f"--set {item!r} must look like NODE:KEY=VALUE")
        overrides.setdefault(node, {})[key] = yaml.safe_load(value)
    try:
        keywords, launch_args = runner_arguments(args.profile, args.arguments)
    except ValueError as exc:
        ap.error(str(exc))
    sim = keywords.get("sim")
    args.backend = keywords.get("backend", args.backend)
    if "params_file" in keywords:
        args.params_file = keywords["params_file"] or None
    try:  # refuse a bad choice here, with one line, before any node starts
        describe(
            args.profile,
            sim=sim,
            backend=args.backend,
            params_file=args.params_file,
            overrides=overrides,
            arguments=launch_args,
        )
    except (KeyError, ValueError) as exc:
        ap.error(str(exc).strip("'\""))
    if sim is not None and sim.strip().lower() == "gazebo":
        ap.exit(2, f"{ap.prog}: error: {GAZEBO_NEEDS_ROS2}\n")  # one line, no usage
    logging.basicConfig(level=logging.INFO, format="[wm_bringup] %(message)s")
    return up(
        args.profile,
        mode=args.mode,
        backend=args.backend,
        params_file=args.params_file,
        seconds=args.seconds,
        seed=args.seed,
        sim=sim,
        overrides=overrides,
        arguments=launch_args,
    )


if __name__ == "__main__":
    raise SystemExit(main())
