"""The ``wm`` command.

Every subcommand that produces results writes JSON under ``--out DIR`` (``calibrate``: a YAML
file ``--out FILE``) and prints a short human summary. Bad arguments get a one-line error naming
the value and the allowed range, and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

from wm_core.config import ConfigError, load_yaml
from wm_core.paths import PathEscapeError, inside

EXIT_USAGE = 2


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _writable_dir(path: str) -> Path:
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / ".wm-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"--out {path!r} is not a writable directory ({exc.strerror})") from exc
    return p


def _check_episodes_seed(args: argparse.Namespace) -> None:
    if args.episodes < 1:
        raise UsageError(f"--episodes {args.episodes} must be >= 1")
    if args.seed < 0:
        raise UsageError(f"--seed {args.seed} must be >= 0")


def _add_scene_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--objects",
        type=int,
        default=None,
        help="objects on the table per episode, 1-6 (default 3)",
    )
    p.add_argument(
        "--camera-jitter",
        type=float,
        default=None,
        metavar="DEG",
        help="scene camera orientation jitter, 0-15 deg, random axis (default 0)",
    )
    p.add_argument(
        "--light-jitter",
        type=float,
        default=None,
        metavar="FRAC",
        help="light intensity jitter fraction and position jitter (FRAC x 0.5 m), 0-1 (default 0)",
    )
    p.add_argument(
        "--camera-shift",
        type=float,
        default=None,
        metavar="M",
        help="scene camera position jitter per axis, 0-0.2 m (default 0)",
    )
    p.add_argument(
        "--appearance-jitter",
        type=float,
        default=None,
        metavar="FRAC",
        help="domain randomisation of colours, textures and light tints, 0-1 (default 0)",
    )
    p.add_argument(
        "--table-height-jitter",
        type=float,
        default=None,
        metavar="M",
        help="table height jitter, 0-0.1 m; the table, bin and objects move (default 0)",
    )
    p.add_argument(
        "--scene-config",
        type=str,
        default=None,
        metavar="YAML",
        help="SceneConfig YAML (fields of wm_core.sim.config.SceneConfig); "
        "flags override it. Object sizes and colours are drawn per seed "
        "within object_half_size",
    )


def _scene_config(args: argparse.Namespace):
    from wm_core.sim.config import SceneConfig

    cfg = load_yaml(SceneConfig, args.scene_config) if args.scene_config else SceneConfig()
    over = {}
    if args.objects is not None:
        over["n_objects"] = args.objects
    if args.camera_jitter is not None:
        over["camera_jitter_deg"] = args.camera_jitter
    if args.light_jitter is not None:
        over["light_jitter"] = args.light_jitter
    if args.camera_shift is not None:
        over["camera_shift"] = args.camera_shift
    if args.appearance_jitter is not None:
        over["appearance_jitter"] = args.appearance_jitter
    if args.table_height_jitter is not None:
        over["table_height_jitter"] = args.table_height_jitter
    return dataclasses.replace(cfg, **over)


def _cell(args: argparse.Namespace):
    """The work cell of ``--cell FILE`` (default: configs/cells/sim.yaml); a bad file is a
    one-line error naming the file and the field."""
    from wm_core.cell import cell_or_default

    return cell_or_default(args.cell)


def _cell_overrides(args: argparse.Namespace) -> dict[str, dict]:
    """``--cell FILE`` for the stack: every node that reads the cell gets the same file."""
    if args.cell is None:
        return {}
    _cell(args)  # refuse a bad file here, with one line, before any node starts
    path = str(Path(args.cell).resolve())
    return {n: {"cell_file": path} for n in ("wm_sim", "wm_planner", "wm_safety")}


def cmd_eval(args: argparse.Namespace) -> int:
    from wm_core.deploy.backends import BackendUnavailableError
    from wm_core.eval.policies import available_policies
    from wm_core.eval.runner import evaluate, summary_table
    from wm_core.models.checkpoint import CheckpointError

    pols = available_policies()
    if args.policy not in pols:
        raise UsageError(f"--policy {args.policy!r} unknown; choose one of {sorted(pols)}")
    _check_episodes_seed(args)
    if args.calibrate and args.policy != "latent-mpc":
        raise UsageError(f"--calibrate is for --policy latent-mpc, not {args.policy!r}")
    cfg = _scene_config(args)
    cell = _cell(args)
    options = _policy_options(args)
    out = _writable_dir(args.out)
    try:
        report = evaluate(
            args.policy,
            args.episodes,
            args.seed,
            cfg,
            out,
            video=_video_mode(args),
            progress=not args.quiet,
            policy_options=options,
            cell=cell,
            calibrate=args.calibrate,
            rerun=_rerun_file(args),
        )
    except (CheckpointError, BackendUnavailableError) as exc:
        raise UsageError(str(exc)) from exc
    print(summary_table(report))
    print(f"report: {out / 'report.json'}")
    _print_media(out, report)
    return 0


def _video_mode(args: argparse.Namespace) -> str:
    """``--video raw|annotated|none``; ``--no-video`` is the old spelling of ``--video none``."""
    if args.no_video:
        if args.video not in (None, "none"):
            raise UsageError(f"--no-video contradicts --video {args.video}")
        return "none"
    return args.video or "annotated"


def _rerun_file(args: argparse.Namespace) -> Path | None:
    """``--rerun FILE.rrd``: a writable .rrd path (its folder is made), or None."""
    if args.rerun is None:
        return None
    path = Path(args.rerun)
    if path.suffix != ".rrd":
        raise UsageError(f"--rerun {args.rerun!r} must name a .rrd file")
    if path.is_dir():
        raise UsageError(f"--rerun {args.rerun!r} is a directory")
    _writable_dir(str(path.parent) if str(path.parent) else ".")
    try:
        import rerun  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"--rerun needs the rerun-sdk package ({exc}); run `make setup`") from None
    return path


def _print_media(out: Path, report: dict) -> None:
    if "video" in report:
        size = report.get("video_size")
        extra = f" ({report['video_mode']}, {size[0]}x{size[1]})" if size else ""
        print(f"video: {out / report['video']}{extra}")
    if "rerun" in report:
        print(f"rerun: {report['rerun']} (open with: rerun {report['rerun']})")


def _add_video_args(p: argparse.ArgumentParser, what: str, rerun: bool = True) -> None:
    p.add_argument(
        "--video",
        choices=["annotated", "raw", "none"],
        default=None,
        help=f"{what}: annotated (default: camera view with detections, target, plan, phase, "
        "surprise and filter verdicts), raw (the scene render) or none",
    )
    p.add_argument("--no-video", action="store_true", help="same as --video none")
    if rerun:
        p.add_argument(
            "--rerun",
            default=None,
            metavar="FILE.rrd",
            help="also write episode 0 (wm up sim without --episodes: the run, when it stops) "
            "as a rerun recording (open it with: rerun FILE.rrd)",
        )


def _add_planner_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("latent-mpc options")
    g.add_argument("--planner", default=None, help="cem (default), mppi or gradient")
    g.add_argument("--model", default=None, help="model directory (default: models/default)")
    g.add_argument(
        "--world-model",
        default=None,
        help="learned (default) or an ablation: copy-last, random, generative",
    )
    g.add_argument(
        "--no-guardrail-costs",
        action="store_true",
        help="ablation: drop the planner's guardrail costs (the hard filter stays on)",
    )
    g.add_argument(
        "--no-verify-done",
        action="store_true",
        help="ablation: declare done on the first empty reads, without parking the arm out of "
        "view and re-reading (the behaviour before the check)",
    )
    g.add_argument("--samples", type=int, default=None, help="candidates per iteration")
    g.add_argument("--iterations", type=int, default=None, help="optimiser iterations per step")
    g.add_argument("--horizon", type=int, default=None, help="planned steps")
    g.add_argument(
        "--object-disturbance",
        type=float,
        default=None,
        help="weight of the cost on the predicted displacement of the objects not being picked "
        "(the compact object model, MODEL/objects.pt; default 0: off)",
    )
    g.add_argument(
        "--backend",
        default=None,
        help="inference backend of the world model: torch (default), onnxruntime, tensorrt or "
        "auto (needs wm export --format onnx into MODEL/onnx for the last three)",
    )
    g.add_argument("--device", default=None, help="cpu (default) or cuda")


def _policy_options(args: argparse.Namespace) -> dict:
    """latent-mpc options from the flags; a clear error if they are given to another policy."""
    from wm_core.plan.config import CostWeights, PlannerConfig
    from wm_core.plan.policy import WORLD_MODELS

    keys = ("planner", "model", "world_model", "samples", "iterations", "horizon", "backend")
    keys += ("object_disturbance",)
    given = {k: getattr(args, k) for k in (*keys, "device") if getattr(args, k) is not None}
    if args.no_guardrail_costs:
        given["guardrails"] = False
    if getattr(args, "no_verify_done", False):
        given["verify_done"] = False
    if args.policy != "latent-mpc":
        if given:
            raise UsageError(f"{sorted(given)} only apply to --policy latent-mpc")
        return {}
    if given.get("world_model", "learned") not in WORLD_MODELS:
        raise UsageError(f"--world-model {given['world_model']!r} must be one of {WORLD_MODELS}")
    plan_keys = {"planner": "optimizer", "samples": "samples", "iterations": "iterations"}
    plan_keys["horizon"] = "horizon"
    try:
        pcfg = PlannerConfig(**{plan_keys[k]: v for k, v in given.items() if k in plan_keys})
        if "object_disturbance" in given:
            w = CostWeights(object_disturbance=given["object_disturbance"])
            pcfg = dataclasses.replace(pcfg, weights=w)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    options = {"planner_config": pcfg, "planner": pcfg.optimizer}
    if "backend" in given or "device" in given:
        from wm_core.deploy.config import BackendConfig

        try:
            options["backend"] = BackendConfig(
                backend=given.get("backend", "torch"), device=given.get("device", "cpu")
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    if "model" in given:
        options["model_dir"] = given["model"]
    for k in ("world_model", "guardrails"):
        if k in given:
            options[k] = given[k]
    if "verify_done" in given:
        from wm_core.plan.config import TaskConfig

        options["task_config"] = TaskConfig(verify_done=False)
    return options


def cmd_compare(args: argparse.Namespace) -> int:
    from wm_core.eval.compare import ENTRIES, compare
    from wm_core.models.checkpoint import CheckpointError

    _check_episodes_seed(args)
    entries = [e.strip() for e in args.entries.split(",") if e.strip()]
    unknown = [e for e in entries if e not in ENTRIES]
    if unknown or not entries:
        raise UsageError(f"--entries {unknown or args.entries!r}: choose from {sorted(ENTRIES)}")
    readme = Path(args.readme) if args.readme else None
    if readme is not None and not readme.is_file():
        raise UsageError(f"--readme {args.readme!r} is not a file")
    out = _writable_dir(args.out)
    try:
        compare(
            entries,
            args.episodes,
            args.seed,
            _scene_config(args),
            out,
            video=_video_mode(args),
            progress=not args.quiet,
            readme=readme,
            fresh=args.fresh,
        )
    except (CheckpointError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    print((out / "compare.md").read_text())
    print(f"table, chart and videos in {out}")
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from wm_core.data.collect import CollectConfig, collect

    _check_episodes_seed(args)
    if not 1 <= args.workers <= 64:
        raise UsageError(f"--workers {args.workers} must be in [1, 64]")
    try:
        cfg = CollectConfig(
            steps_per_episode=args.steps, image_size=args.image_size, paired=args.paired
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    scene = _scene_config(args)
    out = _writable_dir(args.out)
    result = collect(
        out, args.episodes, args.workers, args.seed, scene, cfg, progress=not args.quiet
    )
    (out / "collect.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"collected {result['collected']} episodes ({result['steps']} steps), "
        f"kept {result['skipped_existing']} existing, in {out}"
    )
    return 0


def cmd_import_bag(args: argparse.Namespace) -> int:
    from wm_core.data.bag_import import BagImportError, BagTopics, ImportConfig, import_bag

    try:
        cfg = ImportConfig(image_size=args.image_size)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    topics = BagTopics(
        image=args.image_topic,
        joint_states=args.joint_topic,
        command=args.command_topic,
        suction=args.suction_topic,
        holding=args.holding_topic,
        reset=args.reset_topic,
    )
    if args.objects is not None and not 1 <= args.objects <= 64:
        raise UsageError(f"--objects {args.objects}: expected 1-64 objects per scene")
    cell = _cell(args)
    out = _writable_dir(args.out)
    try:
        result = import_bag(Path(args.bag), out, topics, cfg, objects=args.objects, cell=cell)
    except BagImportError as exc:
        raise UsageError(str(exc)) from exc
    summary = inside(out, f"import_{Path(args.bag).name}.json")  # the name comes from data
    summary.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"imported {result['steps']} steps into {result['shards']} shard(s) "
        f"({result['dropped_frames']} frames dropped, {result['dropped_at_resets']} while a "
        f"reset settled; actions from {result['action_source']})"
    )
    if args.objects is not None:
        print(
            f"labels from grips: {result['scenes_labelled']} of {len(result['scenes'])} "
            f"scene(s) explained ({result['human_annotations']} human annotation(s) used)"
        )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    if args.what == "readout":
        return _train_readout(args)
    if args.what == "invariance":
        return _train_invariance(args)
    if args.what == "objects":
        return _train_objects(args)
    from wm_core.models import ModelConfig
    from wm_core.train.trainer import TrainConfig, train

    try:
        mcfg = ModelConfig(
            image_size=args.image_size, collapse=args.collapse, objective=args.objective
        )
        tcfg = TrainConfig(
            steps=2000 if args.steps is None else args.steps,
            batch_size=32 if args.batch_size is None else args.batch_size,
            horizon=3 if args.horizon is None else args.horizon,
            seed=args.seed,
            lr=1e-3 if args.lr is None else args.lr,
            mode=args.what,
            init=args.init or "",
            device=args.device,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if not Path(args.data).is_dir():
        raise UsageError(f"--data {args.data!r} is not a directory of shards")
    out = _writable_dir(args.out)
    try:
        res = train(Path(args.data), out, mcfg, tcfg, progress=not args.quiet)
    except ValueError as exc:  # no usable windows, incompatible checkpoint
        raise UsageError(str(exc)) from exc
    s = res.summary
    print(
        f"trained {s['steps']} steps on {s['windows']} windows ({s['bad_shards']} bad shards "
        f"skipped), {s['samples_per_s']:.1f} windows/s; final loss {s['final']['loss']:.4f}; "
        f"checkpoint {out / 'last.pt'}"
    )
    return 0


def _train_readout(args: argparse.Namespace) -> int:
    from wm_core.models.checkpoint import load_checkpoint
    from wm_core.train.readout import train_readout

    if not args.init:
        raise UsageError("wm train readout needs --init CKPT (the model whose latents it reads)")
    if not Path(args.data).is_dir():
        raise UsageError(f"--data {args.data!r} is not a directory of shards")
    out = _writable_dir(args.out)
    try:
        model = load_checkpoint(Path(args.init))
        steps = 3000 if args.steps is None else args.steps
        if not 1 <= steps <= 1_000_000:
            raise UsageError(f"--steps {steps}: expected 1-1000000")
        batch = 512 if args.batch_size is None else args.batch_size
        if not 1 <= batch <= 65536:
            raise UsageError(f"--batch-size {batch}: expected 1-65536")
        if not 0 <= args.hidden <= 4096:
            raise UsageError(f"--hidden {args.hidden}: expected 0-4096")
        s = train_readout(
            model,
            Path(args.data),
            out,
            steps=steps,
            seed=args.seed,
            cell=_cell(args),
            source=args.source,
            batch=batch,
            hidden=args.hidden,
        )
    except ValueError as exc:  # CheckpointError, no labelled episodes
        raise UsageError(str(exc)) from exc
    print(
        f"object readout on {s['frames_train']} frames: held-out position R^2 "
        f"{s['test_position_r2']:.3f}, error {s['test_position_err_cm']:.2f} cm; "
        f"{out / 'readout.pt'}"
    )
    return 0


def _train_invariance(args: argparse.Namespace) -> int:
    from wm_core.train.invariance import InvarianceConfig, train_invariance

    if not args.init:
        raise UsageError("wm train invariance needs --init CKPT (the model it makes invariant)")
    if not Path(args.data).is_dir():
        raise UsageError(f"--data {args.data!r} is not a directory of shards")
    out = _writable_dir(args.out)
    try:
        cfg = InvarianceConfig(
            steps=1500 if args.steps is None else args.steps,
            batch_size=32 if args.batch_size is None else args.batch_size,
            lr=2e-4 if args.lr is None else args.lr,
            seed=args.seed,
        )
        s = train_invariance(Path(args.init), Path(args.data), out, cfg)
    except ValueError as exc:  # CheckpointError, ConfigError, no paired episodes
        raise UsageError(str(exc)) from exc
    print(
        f"encoder invariance on {s['pairs_train']} pairs, {s['seconds']:.0f} s: held-out "
        f"latent gap {s['test_gap_before']:.4f} -> {s['test_gap_after']:.4f} (nominal drift "
        f"{s['test_nominal_drift']:.4f}; latent variance {s['test_latent_variance']:.4f}); "
        f"checkpoint {out / 'last.pt'}"
    )
    return 0


def _train_objects(args: argparse.Namespace) -> int:
    from wm_core.train.objects import ObjectTrainConfig, train_objects

    if not Path(args.data).is_dir():
        raise UsageError(f"--data {args.data!r} is not a directory of shards")
    out = _writable_dir(args.out)
    try:
        cfg = ObjectTrainConfig(
            steps=3000 if args.steps is None else args.steps,
            batch_size=256 if args.batch_size is None else args.batch_size,
            horizon=5 if args.horizon is None else args.horizon,
            lr=2e-3 if args.lr is None else args.lr,
            hidden=args.hidden,
            seed=args.seed,
        )
        s = train_objects(Path(args.data), out, cfg, cell=_cell(args))
    except ValueError as exc:  # ConfigError, no labelled episodes
        raise UsageError(str(exc)) from exc
    t = s["test"]
    print(
        f"object model on {s['windows_train']} windows of {s['episodes_train']} episodes, "
        f"{s['seconds']:.0f} s: held-out error after {cfg.horizon} steps of the objects that "
        f"moved {t.get(f'moved_obj_err_cm_h{cfg.horizon}')} cm (copy-last "
        f"{t.get(f'copy_last_moved_obj_err_cm_h{cfg.horizon}')} cm, "
        f"{t.get(f'moved_objects_h{cfg.horizon}')} objects), all objects "
        f"{t.get(f'all_obj_err_cm_h{cfg.horizon}')} cm; {out / 'objects.pt'}"
    )
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """The ROS 2 stack through the wm_bringup runner (imported here: wm_core never imports
    rclpy; the runner lives in the ROS workspace). With ``--episodes N``: N table-clearing
    episodes through the running stack, and the ``wm eval`` report plus end-to-end latency."""
    try:
        from wm_bringup.runner import MODES, up
        from wm_bringup.stack import BACKEND_CHOICES, BACKENDS, runner_arguments
    except ImportError as exc:
        raise UsageError(
            f"the ROS 2 workspace is not importable ({exc}); run `make setup` first"
        ) from exc
    if args.mode not in MODES:
        raise UsageError(f"--mode {args.mode!r} must be one of {list(MODES)}")
    if args.backend not in BACKEND_CHOICES:
        raise UsageError(f"--backend {args.backend!r} must be one of {list(BACKENDS)}")
    if args.profile == "pybullet":
        return _up_pybullet(args)
    if args.model is not None:
        raise UsageError(
            "--model goes with wm up pybullet only (sim, real: model_dir in --params-file)"
        )
    try:
        keywords, launch_args = runner_arguments(args.profile, args.arguments)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if keywords or launch_args:
        if args.episodes is not None:
            raise UsageError("NAME:=VALUE arguments do not go with --episodes")
        if args.cell is not None and "cell_file" in launch_args:
            raise UsageError("give the cell once: --cell FILE or cell_file:=FILE")
    if args.episodes is not None:
        return _up_episodes(args)
    if args.out is not None or args.no_video or args.objects is not None:
        raise UsageError("--out, --objects and --no-video go with --episodes N")
    if args.video is not None:
        raise UsageError("--video goes with --episodes N")
    rerun = _rerun_file(args)
    if rerun is not None and (args.profile != "sim" or args.mode != "processes"):
        raise UsageError("--rerun on a running stack needs the sim profile and --mode processes")
    overrides = _cell_overrides(args)
    sim = keywords.get("sim")
    if sim is not None and sim.strip().lower() == "gazebo" and args.profile == "sim":
        from wm_bringup.stack import GAZEBO_NEEDS_ROS2

        raise UsageError(GAZEBO_NEEDS_ROS2)
    if sim is not None and sim.strip().lower() not in ("true", "false"):
        raise UsageError(f"sim:={sim!r} must be true or false")

    def run() -> int:
        return up(
            args.profile,
            mode=args.mode,
            backend=keywords.get("backend", args.backend),
            params_file=keywords.get("params_file") or args.params_file,
            seconds=args.seconds,
            seed=args.seed,
            sim=None if sim is None else sim.strip().lower() == "true",
            overrides=overrides,
            arguments=launch_args,
        )

    try:
        if rerun is None:
            return run()
        from wm_bringup.live_rerun import up_with_rerun

        logging.getLogger("wm_bringup.live_rerun").setLevel(logging.INFO)
        cell = _cell(args) if args.cell else _cell_from(launch_args)
        return up_with_rerun(run, rerun, cell)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def _model_overrides(args: argparse.Namespace) -> dict[str, dict]:
    """``--model DIR`` for perception and planner (a directory with model.pt)."""
    if args.model is None:
        return {}
    if not (Path(args.model) / "model.pt").is_file():
        raise UsageError(f"--model {args.model!r} is not a model directory (no model.pt in it)")
    path = str(Path(args.model).resolve())
    return {n: {"model_dir": path} for n in ("wm_perception", "wm_planner")}


def _episode_args(args: argparse.Namespace) -> tuple[int, Path, str, Path | None]:
    """The checks of ``wm up ... --episodes N`` (sim and pybullet): (first seed, out dir,
    video mode, rerun file)."""
    if args.seconds is not None:
        raise UsageError("--seconds does not go with --episodes (each episode ends by itself)")
    seed = 0 if args.seed is None else args.seed
    _check_episodes_seed(argparse.Namespace(episodes=args.episodes, seed=seed))
    if args.objects is not None and not 1 <= args.objects <= 6:
        raise UsageError(f"--objects {args.objects} must be in [1, 6]")
    if args.out is None:
        raise UsageError("--episodes needs --out DIR (where report.json goes)")
    return seed, _writable_dir(args.out), _video_mode(args), _rerun_file(args)


def _run_up_episodes(
    args: argparse.Namespace, episode_args: tuple, overrides: dict, world: Any = None
) -> int:
    """Run the episodes through the stack (``world``: the episode driver's world, default the
    MuJoCo sim), write and print the report."""
    from wm_bringup.episodes import DriverError, run_episodes, summary

    seed, out, video, rerun = episode_args
    logging.getLogger("wm_bringup.episodes").setLevel(logging.INFO)
    extra = {} if world is None else {"world": world}
    try:
        report = run_episodes(
            args.episodes,
            seed,
            out,
            mode=args.mode,
            video=video,
            rerun=rerun,
            backend=args.backend,
            params_file=args.params_file,
            overrides=overrides,
            **extra,
        )
    except DriverError as exc:
        print(f"wm up: error: {exc}", file=sys.stderr)
        return 1
    print(summary(report))
    print(f"report: {out / 'report.json'}")
    _print_media(out, report)
    return 0


def _up_pybullet(args: argparse.Namespace) -> int:
    """``wm up pybullet``: the real-arm profile (its nodes, arguments and device topics) against
    the PyBullet world (``sim:=pybullet``), which stands in for the arm and the camera. The
    cell is configs/cells/pybullet.yaml unless ``--cell`` names another; the brain reads the
    same file the world is built from."""
    from wm_bringup.runner import up
    from wm_bringup.stack import runner_arguments

    try:
        keywords, launch_args = runner_arguments("real", args.arguments)
    except ValueError as exc:
        raise UsageError(
            str(exc).replace("the real profile", "wm up pybullet (real profile)")
        ) from exc
    if "sim" in keywords:
        raise UsageError("wm up pybullet sets sim:=pybullet itself; do not give sim:=")
    if args.cell is not None:
        if "cell_file" in launch_args:
            raise UsageError("give the cell once: --cell FILE or cell_file:=FILE")
        _cell(args)  # a bad file: one line, before any node starts
        launch_args["cell_file"] = str(Path(args.cell).resolve())
    elif launch_args.get("cell_file"):
        from wm_core.cell import load_cell

        load_cell(launch_args["cell_file"])
    launch_args["sim"] = "pybullet"
    overrides = _model_overrides(args)
    if args.episodes is None:
        if args.out is not None or args.no_video or args.objects is not None or args.video:
            raise UsageError("--out, --objects and --video go with --episodes N")
        if args.rerun is not None:
            raise UsageError("--rerun goes with --episodes N for wm up pybullet")
        if args.seed is not None:
            overrides.setdefault("wm_pybullet", {})["seed"] = args.seed
        sim = launch_args.pop("sim")
        try:
            return up(
                "real",
                mode=args.mode,
                backend=keywords.get("backend", args.backend),
                params_file=keywords.get("params_file") or args.params_file,
                seconds=args.seconds,
                sim=sim,
                overrides=overrides,
                arguments=launch_args,
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    if keywords:
        raise UsageError(
            f"{sorted(keywords)}:= do not go with --episodes (use --backend, --params-file)"
        )
    episode_args = _episode_args(args)
    if args.objects is not None:
        overrides.setdefault("wm_pybullet", {})["n_objects"] = args.objects
    from wm_bringup.episodes import World

    world = World("real", tuple(launch_args.items()))
    try:
        world.stack(overrides, args.params_file)  # a bad argument: one line, before any node
    except (KeyError, ValueError) as exc:
        raise UsageError(str(exc).strip("'\"")) from exc
    return _run_up_episodes(args, episode_args, overrides, world)


def _cell_from(launch_args: dict[str, str]):
    """The cell of a ``cell_file:=FILE`` launch argument, else the sim cell."""
    from wm_core.cell import cell_or_default

    return cell_or_default(launch_args.get("cell_file"))


def cmd_record(args: argparse.Namespace) -> int:
    """Record the stack's topics into a rosbag2 MCAP bag (the recorder is a ROS node in
    wm_bringup, imported here: wm_core never imports rclpy)."""
    if args.seconds is not None and not (math.isfinite(args.seconds) and args.seconds > 0):
        raise UsageError(f"--seconds {args.seconds} must be a positive number of seconds")
    try:
        from wm_bringup.recorder import (
            STACK_TOPICS,
            RecorderConfig,
            RecordError,
            record,
            topic_table,
        )
    except ImportError as exc:
        raise UsageError(
            f"the ROS 2 workspace is not importable ({exc}); run `make setup` first"
        ) from exc
    topics = tuple(args.topics) if args.topics else tuple(STACK_TOPICS)
    cfg = RecorderConfig(out=Path(args.out), topics=topics, seconds=args.seconds)
    try:
        summary = record(cfg)
    except RecordError as exc:
        raise UsageError(str(exc)) from exc
    (cfg.out / "record.json").write_text(json.dumps(summary.to_json(), indent=2) + "\n")
    for line in topic_table(summary):
        print(line)
    written = sum(s.written for s in summary.topics.values())
    print(f"recorded {written} messages in {summary.duration_s:.1f} s into {cfg.out} (MCAP)")
    if summary.missed:
        print(
            f"wm record: warning: {summary.missed} message(s) were published but never "
            "arrived (see the missed column)",
            file=sys.stderr,
        )
    if not summary.ok:
        why = summary.failure or "some messages received were not written"
        print(f"wm record: error: {why}; the bag holds what was written", file=sys.stderr)
        return 1
    return 0


def _up_episodes(args: argparse.Namespace) -> int:
    if args.profile != "sim":
        raise UsageError("--episodes needs the sim profile (the simulator scores the episodes)")
    episode_args = _episode_args(args)
    overrides = _cell_overrides(args)
    if args.objects is not None:
        overrides.setdefault("wm_sim", {})["n_objects"] = args.objects
    return _run_up_episodes(args, episode_args, overrides)


def cmd_export(args: argparse.Namespace) -> int:
    from wm_core.models.checkpoint import CheckpointError

    if not Path(args.checkpoint).is_file():
        raise UsageError(f"--checkpoint {args.checkpoint!r} does not exist")
    out = _writable_dir(args.out)
    if args.format == "model":
        from wm_core.models.export import export_model

        if not args.readout or not Path(args.readout).is_file():
            raise UsageError(
                f"--readout {args.readout!r} does not exist (wm train readout makes it)"
            )
        try:
            sizes = export_model(Path(args.checkpoint), Path(args.readout), out)
        except CheckpointError as exc:
            raise UsageError(str(exc)) from exc
        print(
            f"exported to {out}: model.pt {sizes['model_bytes'] / 1e6:.2f} MB, readout.pt "
            f"{sizes['readout_bytes'] / 1e6:.2f} MB, config.yaml, golden.json"
        )
        return 0
    from wm_core.deploy.onnx_export import GRAPHS, ExportError, export_onnx

    try:
        manifest = export_onnx(Path(args.checkpoint), out)
    except CheckpointError as exc:
        raise UsageError(str(exc)) from exc
    except ExportError as exc:
        print(f"wm export: error: {exc}", file=sys.stderr)
        return 1
    worst = {g: f"{manifest['parity'][g]['max_abs_err']:.1e}" for g in GRAPHS}
    print(
        f"exported to {out}: {', '.join(g['file'] for g in manifest['graphs'].values())} "
        f"(+ .fp16.onnx), manifest.json; onnxruntime vs torch max abs error {worst} "
        f"(tolerance {manifest['parity']['tolerance']})"
    )
    if args.format == "tensorrt":
        from wm_core.deploy.backends import BackendUnavailableError, make_backend
        from wm_core.deploy.config import BackendConfig

        engines = Path(args.engine_dir) if args.engine_dir else out / "engines"
        cfg = BackendConfig(
            backend="tensorrt",
            onnx_dir=str(out),
            engine_dir=str(engines),
            force_engine_update=args.force_engine_update,
            max_batch=args.max_batch,
        )
        try:
            make_backend(Path(args.checkpoint).parent, cfg).close()
        except BackendUnavailableError as exc:
            print(f"wm export: error: {exc}", file=sys.stderr)
            return 2
        print(f"TensorRT engines in {engines}")
    return 0


def cmd_gazebo(args: argparse.Namespace) -> int:
    from wm_core.cell import cell_or_default
    from wm_core.gazebo import write_gazebo_files
    from wm_core.sim.config import MAX_OBJECTS, MIN_OBJECTS, SceneConfig
    from wm_core.sim.scene import episode_world_objects

    if args.seed < 0:
        raise UsageError(f"--seed {args.seed} must be >= 0")
    if not MIN_OBJECTS <= args.objects <= MAX_OBJECTS:
        raise UsageError(f"--objects {args.objects} must be in [{MIN_OBJECTS}, {MAX_OBJECTS}]")
    cell = cell_or_default(args.cell)
    out = _writable_dir(args.out)
    if args.image_size is not None and not 8 <= args.image_size <= 16384:
        raise UsageError(f"--image-size {args.image_size} must be in [8, 16384]")
    objects = episode_world_objects(args.seed, SceneConfig(n_objects=args.objects))
    size = None if args.image_size is None else (args.image_size, args.image_size)
    files = write_gazebo_files(cell, out, objects, size, args.rate)
    summary = {
        "cell": cell.source,
        "seed": args.seed,
        "objects": list(files.objects),
        "files": {k: str(getattr(files, k)) for k in ("world", "urdf", "controllers", "bridge")},
    }
    (out / "gazebo.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"Gazebo files of {cell.name} (seed {args.seed}, {len(objects)} objects) in {out}: "
        "world.sdf, wm_arm.urdf, controllers.yaml, bridge.yaml"
    )
    return 0


def cmd_evaluate_model(args: argparse.Namespace) -> int:
    from wm_core.eval.model_eval import evaluate_model

    out = _writable_dir(args.out)
    if args.data is not None and not Path(args.data).is_dir():
        raise UsageError(f"--data {args.data!r} is not a directory of shards")
    try:
        r = evaluate_model(
            Path(args.checkpoint),
            args.episodes,
            args.seed,
            out,
            steps=args.steps,
            baseline=Path(args.baseline) if args.baseline else None,
            data=Path(args.data) if args.data else None,
            cell=_cell(args),
            objects=Path(args.objects) if args.objects else None,
        )
    except ValueError as exc:  # CheckpointError, bad episode count
        raise UsageError(str(exc)) from exc

    def f(key: str) -> str:
        v = r.get(key)
        return "n/a" if v is None else f"{v:.3f}"

    for key in (
        "min_dim_std",
        "effective_rank",
        "probe_r2_tool",
        "probe_r2_objects",
        "rollout_error_h1",
        "rollout_error_h5",
        "rollout_error_h10",
        "rollout_error_ratio_h5",
        "rollout_obj_err_cm_h5",
        "copy_last_obj_err_cm_h5",
        "generative_obj_err_cm_h5",
        "generative_probe_r2_objects",
        *(
            ("object_model_obj_err_cm_h5", "object_model_from_truth_obj_err_cm_h5")
            * bool(args.objects)
        ),
    ):
        print(f"{key:<26} {f(key)}")
    print(f"report: {out / 'model_report.json'}")
    return 0


def cmd_chaos(args: argparse.Namespace) -> int:
    """Fault injection through the running stack (``wm_bringup.chaos``): one episode per fault,
    then ``DIR/chaos.json`` and the Markdown table ``DIR/chaos.md``."""
    if not 1 <= args.objects <= 6:
        raise UsageError(f"--objects {args.objects} must be in [1, 6]")
    if not 0 <= args.seed < 2**31:
        raise UsageError(f"--seed {args.seed} must be in [0, 2^31)")
    out = _writable_dir(args.out)
    from wm_bringup.chaos import markdown, run_chaos, select
    from wm_bringup.episodes import DriverError

    try:
        faults = select(args.faults)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    logging.getLogger("wm_bringup").setLevel(logging.INFO)

    def progress(row: dict) -> None:
        print(
            f"{row['fault']}: violations {row['violations']}, hold {row['hold_ms']} ms, "
            f"recovery {row['recovery_ms']} ms, dropped {row['dropped']}, lost {row['lost']}, "
            f"completed {row['completed']}",
            flush=True,
        )

    try:
        report = run_chaos(out, faults, args.seed, args.objects, progress=progress)
    except DriverError as exc:
        print(f"wm chaos: error: {exc}", file=sys.stderr)
        return 1
    print(markdown(report), end="")
    print(f"report: {out / 'chaos.json'} and {out / 'chaos.md'}")
    return 0 if report["all_targets_met"] else 1


def cmd_bench(args: argparse.Namespace) -> int:
    if args.seconds is not None and args.what != "stack":
        raise UsageError("--seconds is for `wm bench stack` only")
    if args.annotate and args.what != "stack":
        raise UsageError("--annotate is for `wm bench stack` only")
    if args.seconds is not None and not args.seconds > 0:
        raise UsageError(f"--seconds {args.seconds} must be > 0")
    out = _writable_dir(args.out)
    if args.what == "stack":  # imported here: wm_core never imports rclpy
        try:
            from wm_bringup.bench import bench_stack
            from wm_bringup.episodes import DriverError
        except ImportError as exc:
            raise UsageError(
                f"the ROS 2 workspace is not importable ({exc}); run `make setup` first"
            ) from exc
        try:
            result = bench_stack(
                seconds=args.seconds or 20.0,
                log_dir=out / "bench_stack_logs",
                record_view=args.annotate,
            )
        except DriverError as exc:
            print(f"wm bench: error: {exc}", file=sys.stderr)
            return 1
    elif args.what == "sim":
        from wm_core.bench.sim import bench_sim

        result = bench_sim()
    elif args.what == "model":
        from wm_core.bench.model import bench_model

        result = bench_model()
    elif args.what == "planner":
        from wm_core.bench.planner import bench_planner

        result = bench_planner()
    elif args.what == "export":
        from wm_core.bench.export import bench_export

        result = bench_export()
    else:  # argparse restricts choices
        raise UsageError(f"unknown benchmark {args.what!r}")
    text = json.dumps(result, indent=2)
    (out / f"bench_{args.what}.json").write_text(text + "\n")
    print(text)
    return 0


def cmd_soak(args: argparse.Namespace) -> int:
    if not args.minutes > 0:
        raise UsageError(f"--minutes {args.minutes:g} must be > 0")
    out = _writable_dir(args.out)
    try:  # imported here: wm_core never imports rclpy
        from wm_bringup.episodes import DriverError
        from wm_bringup.soak import SoakConfig, run_soak
    except ImportError as exc:
        raise UsageError(
            f"the ROS 2 workspace is not importable ({exc}); run `make setup` first"
        ) from exc
    try:
        cfg = SoakConfig(
            minutes=args.minutes,
            seed=args.seed,
            mode=args.mode,
            sample_s=args.sample_s,
            warmup_min=args.warmup_min,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    logging.getLogger("wm_bringup.soak").setLevel(logging.INFO)
    try:
        report = run_soak(cfg, out)
    except DriverError as exc:
        print(f"wm soak: error: {exc}", file=sys.stderr)
        return 1
    print((out / "soak.md").read_text())
    print(f"report: {out / 'soak.json'}")
    return 0 if report["passed"] else 1


def _writable_file(path: str, flag: str = "--out") -> Path:
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{flag} {path!r} is a directory; give a file name")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{flag} {path!r}: cannot create its directory ({exc.strerror})") from exc
    if not os.access(p if p.exists() else p.parent, os.W_OK):
        raise UsageError(f"{flag} {path!r} is not writable")
    return p


def cmd_calibrate(args: argparse.Namespace) -> int:
    if args.what == "intrinsics":
        return _calibrate_intrinsics(args)
    if args.what == "sim":
        return _calibrate_sim(args)
    if args.what == "collect":
        return _calibrate_collect(args)
    return _calibrate_handeye(args)


def _calibrate_collect(args: argparse.Namespace) -> int:
    """Record hand-eye samples from the camera and /joint_states (a small rclpy node)."""
    from wm_core.calib.boards import BoardSpec
    from wm_core.calib.io import read_camera_info

    try:
        from wm_bringup.calibration_collector import CollectConfig, collect
    except ImportError as exc:
        raise UsageError(
            f"the ROS 2 workspace is not importable ({exc}); run `make setup`"
        ) from exc
    if args.board == "charuco" and args.marker is None:
        raise UsageError("--marker METRES (the ArUco marker side) is required for --board charuco")
    if args.samples < 3:
        raise UsageError(f"--samples {args.samples} must be >= 3 (10-20 recommended)")
    board = BoardSpec(args.board, args.cols, args.rows, args.square, args.marker, args.dictionary)
    intr = read_camera_info(args.camera_info)
    out = _writable_file(args.out)
    cfg = CollectConfig(
        board, intr, str(Path(args.camera_info).resolve()), args.samples, args.tool_link,
        args.image_topic,
    )  # fmt: skip
    path, n = collect(cfg, out, args.timeout)
    if path is None:
        print(
            f"wm calibrate: error: {n} of {args.samples} samples after {args.timeout:.0f} s "
            "(is the board in view, and does the arm pause at each pose?)",
            file=sys.stderr,
        )
        return 1
    print(f"{n} samples: {path} (next: wm calibrate handeye --samples {path} ...)")
    return 0


def _calibrate_sim(args: argparse.Namespace) -> int:
    """The whole calibration path in MuJoCo: board on the tool, sweep, hand-eye -> cell file."""
    from wm_core.cell import write_cell
    from wm_core.sim.calibration import calibrate_camera
    from wm_core.sim.config import SceneConfig

    if args.seed < 0:
        raise UsageError(f"--seed {args.seed} must be >= 0")
    cfg = SceneConfig(camera_jitter_deg=args.camera_jitter, light_jitter=args.light_jitter)
    cell = _cell(args)
    out = _writable_file(args.out)
    cal = calibrate_camera(cfg, args.seed, cell, poses=args.poses)
    header = (
        f"wm calibrate sim --seed {args.seed} --camera-jitter {args.camera_jitter} "
        f"--light-jitter {args.light_jitter}: {cal.views} board views, {cal.method}"
    )
    write_cell(cal.cell, out, header)
    s = cal.summary()
    print(f"{cal.views} board views of {args.poses}, best method {cal.method}")
    print(
        f"residuals {s['residual_translation_mm']} mm / {s['residual_rotation_deg']} deg; "
        f"pose error against the simulator {s['pose_error_translation_mm']} mm / "
        f"{s['pose_error_rotation_deg']} deg"
    )
    print(f"cell: {out}")
    return 0


def _calibrate_intrinsics(args: argparse.Namespace) -> int:
    from wm_core.calib.boards import BoardSpec
    from wm_core.calib.intrinsics import calibrate_directory
    from wm_core.calib.io import write_camera_info

    if args.board == "charuco" and args.marker is None:
        raise UsageError("--marker METRES (the ArUco marker side) is required for --board charuco")
    board = BoardSpec(args.board, args.cols, args.rows, args.square, args.marker, args.dictionary)
    if not Path(args.images).is_dir():
        raise UsageError(f"--images {args.images!r} is not a directory")
    out = _writable_file(args.out)
    result, report = calibrate_directory(args.images, board, args.camera_name)
    write_camera_info(out, result.intrinsics)
    n_all = len(report.names) + len(report.failed)
    print(f"board found in {len(report.names)}/{n_all} images of {args.images}")
    width = max(len(n) for n in report.names)
    print(f"  {'image':<{width}}  RMS [px]")
    for name, err in zip(result.names, result.per_image_rms, strict=True):
        print(f"  {name:<{width}}  {err:8.3f}")
    if report.failed:
        print(f"board not found in: {', '.join(report.failed)}")
    k, dist = result.intrinsics.K, result.intrinsics.D
    print(f"RMS reprojection error {result.rms:.3f} px")
    print(
        f"fx {k[0, 0]:.2f}  fy {k[1, 1]:.2f}  cx {k[0, 2]:.2f}  cy {k[1, 2]:.2f}  "
        f"D [{', '.join(f'{d:.5f}' for d in dist)}]"
    )
    print(f"camera_info: {out}")
    return 0


def _calibrate_handeye(args: argparse.Namespace) -> int:
    from wm_core.calib.handeye import METHODS, calibrate_handeye, results_table
    from wm_core.calib.io import read_camera_info, read_handeye_samples, write_handeye_result

    samples = read_handeye_samples(args.samples)
    cam_path = Path(samples.camera_info)
    if not cam_path.is_absolute():
        cam_path = Path(args.samples).parent / cam_path
    intr = read_camera_info(cam_path)  # the intrinsics the board poses came from must load
    out = _writable_file(args.out)
    methods = METHODS if args.method == "all" else (args.method,)
    result = calibrate_handeye(samples, args.mode, methods)
    write_handeye_result(out, result, samples.tool_frame)
    print(
        f"{result.samples} samples, {args.mode}, camera {intr.name} "
        f"({intr.width}x{intr.height}, {cam_path})"
    )
    for w in result.warnings:
        print(f"warning: {w}")
    print(results_table(result))
    pose = result.best.X
    name = "T_world_cam" if args.mode == "eye-to-hand" else f"T_{samples.tool_frame}_cam"
    xyz = ", ".join(f"{float(v):.4f}" for v in pose[:3, 3])
    print(f"{name} ({result.best.method}): translation [{xyz}] m")
    print(f"hand-eye result: {out}")
    return 0


def _add_board_args(p: argparse.ArgumentParser) -> None:
    """The calibration board's flags (intrinsics and collect)."""
    p.add_argument("--board", required=True, choices=["chessboard", "charuco"])
    p.add_argument(
        "--cols", type=int, required=True, help="chessboard: inner corners; charuco: squares"
    )
    p.add_argument(
        "--rows", type=int, required=True, help="chessboard: inner corners; charuco: squares"
    )
    p.add_argument("--square", type=float, required=True, help="square side, metres")
    p.add_argument("--marker", type=float, default=None, help="ArUco marker side, metres (charuco)")
    p.add_argument(
        "--dictionary",
        default="DICT_4X4_50",
        help="ArUco dictionary (charuco; default DICT_4X4_50)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wm", description="World-model arm stack command line.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    ev = sub.add_parser(
        "eval",
        help="run a policy for N seeded table-clearing episodes",
        description="Run a policy for N episodes (seeds S..S+N-1) and write "
        "DIR/report.json and DIR/episode0.mp4.",
    )
    ev.add_argument(
        "--policy",
        required=True,
        help="registered policy name (built in: oracle, random, latent-mpc)",
    )
    ev.add_argument("--episodes", type=int, default=10, help="number of episodes, >= 1")
    ev.add_argument("--cell", default=None, help="work-cell file (default: configs/cells/sim.yaml)")
    ev.add_argument(
        "--calibrate",
        action="store_true",
        help="before each episode, calibrate its camera (board on the tool, hand-eye) and plan "
        "with the calibrated camera (latent-mpc)",
    )
    ev.add_argument("--seed", type=int, default=0, help="first episode seed, >= 0")
    _add_scene_args(ev)
    ev.add_argument("--out", required=True, help="output directory")
    _add_video_args(ev, "episode 0's mp4")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_planner_args(ev)
    ev.set_defaults(func=cmd_eval)

    cp = sub.add_parser(
        "compare",
        help="several policies and ablations on the same seeds: table, bar chart, videos",
    )
    cp.add_argument(
        "--entries",
        default="oracle,random,latent-mpc-cem,ablation-copy-last,ablation-random-weights,"
        "ablation-generative,ablation-no-guardrail-costs",
        help="comma-separated entries (see wm_core/eval/compare.py ENTRIES)",
    )
    cp.add_argument("--episodes", type=int, default=10, help="episodes per entry, >= 1")
    cp.add_argument("--seed", type=int, default=100_000, help="first (held-out) seed")
    _add_scene_args(cp)
    cp.add_argument("--out", required=True, help="output directory")
    cp.add_argument("--readme", default=None, help="also rewrite the table in this Markdown file")
    _add_video_args(cp, "each entry's episode-0 mp4", rerun=False)
    cp.add_argument(
        "--fresh", action="store_true", help="re-run entries that already have a matching report"
    )
    cp.add_argument("--quiet", action="store_true", help="no progress bars")
    cp.set_defaults(func=cmd_compare)

    co = sub.add_parser(
        "collect",
        help="collect simulated trajectories into shards",
        description="Parallel, resumable collection (seeds S..S+N-1) of "
        "oracle, noisy-oracle and random/oracle-segment episodes.",
    )
    co.add_argument("--episodes", type=int, required=True, help="episodes, >= 1")
    co.add_argument("--workers", type=int, default=2, help="worker processes, 1-64")
    co.add_argument("--seed", type=int, default=0, help="first episode seed, >= 0")
    co.add_argument("--steps", type=int, default=200, help="actions per episode, 1-10000")
    co.add_argument("--image-size", type=int, default=128, help="image side (px), 16-512")
    _add_scene_args(co)
    co.add_argument("--out", required=True, help="output directory of shards")
    co.add_argument(
        "--paired",
        action="store_true",
        help="also render each frame with the nominal look (label/image_nominal), for "
        "wm train invariance",
    )
    co.add_argument("--quiet", action="store_true", help="no progress bar")
    co.set_defaults(func=cmd_collect)

    ib = sub.add_parser(
        "import-bag",
        help="import a rosbag2 recording (sqlite3 or MCAP)",
        description="Convert a real robot's rosbag2 recording into shards.",
    )
    ib.add_argument("bag", help="rosbag2 directory (with metadata.yaml)")
    ib.add_argument("--out", required=True, help="output directory of shards")
    ib.add_argument("--image-topic", default="/camera/image_raw")
    ib.add_argument("--joint-topic", default="/joint_states")
    ib.add_argument("--command-topic", default="/arm_controller/joint_trajectory")
    ib.add_argument("--suction-topic", default="/suction", help="std_msgs/Bool (optional)")
    ib.add_argument("--image-size", type=int, default=128, help="stored image side, 16-512")
    ib.add_argument(
        "--holding-topic",
        default="/suction/holding",
        help="the gripper's vacuum switch, std_msgs/Bool (optional)",
    )
    ib.add_argument(
        "--reset-topic", default="/wm/sim/reset", help="scene resets, std_msgs/Int64 (optional)"
    )
    ib.add_argument(
        "--objects",
        type=int,
        default=None,
        help="objects set on the table per scene: label each scene from its grips (needs the "
        "vacuum switch); one human annotation per scene",
    )
    ib.add_argument("--cell", default=None, help="the recorded work cell's file (default: sim)")
    ib.set_defaults(func=cmd_import_bag)

    tr = sub.add_parser(
        "train",
        help="train the JEPA world model on shards",
        description="JEPA objective (encoder + predictor); resumes from OUT/last.pt; runs "
        "unchanged under torchrun --nproc_per_node N.",
    )
    tr.add_argument(
        "what",
        choices=["encoder", "world-model", "all", "readout", "invariance", "objects"],
        help="'encoder': self-supervised encoder (latent prediction, collapse prevention); "
        "'world-model': predictor on a frozen encoder (needs --init); 'all': jointly; "
        "'readout': the object probe on the frozen latents of --init (uses sim labels); "
        "'invariance': domain randomisation of --init's encoder on paired frames "
        "(wm collect --paired), its latents kept where they were; 'objects': the compact "
        "object-level model the planner predicts objects with (object labels, like readout)",
    )
    tr.add_argument("--init", default=None, help="checkpoint whose weights start the run")
    tr.add_argument(
        "--objective",
        default="jepa",
        help="'jepa' (the product) or 'generative' (the pixel-reconstruction baseline)",
    )
    tr.add_argument(
        "--lr", type=float, default=None, help="AdamW learning rate (default 1e-3; invariance 2e-4)"
    )
    tr.add_argument(
        "--device", default="auto", help="auto (CUDA when available, else CPU), cpu or cuda"
    )
    tr.add_argument("--data", required=True, help="directory of shards")
    tr.add_argument("--out", required=True, help="run directory")
    tr.add_argument(
        "--steps", type=int, default=None, help="optimiser steps (default 2000; readout 3000)"
    )
    tr.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="windows per step per process (default 32); readout: frames per step (512)",
    )
    tr.add_argument(
        "--horizon", type=int, default=None, help="rollout-loss horizon, 1-32 (3; objects: 5)"
    )
    tr.add_argument("--image-size", type=int, default=128, help="image side of the shards")
    tr.add_argument("--collapse", default="vicreg", help="vicreg or ema")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.add_argument(
        "--cell",
        default=None,
        help="readout: the work cell whose camera took the frames (default: sim)",
    )
    tr.add_argument(
        "--source",
        default="latent",
        choices=["latent", "stage3", "stage2"],
        help="readout: the map it reads: the latent grid (default), or the frozen encoder's "
        "finer stage-3 (2x the grid) or stage-2 (4x) map, for a camera that sees the objects "
        "small (several in one latent patch)",
    )
    tr.add_argument(
        "--hidden",
        type=int,
        default=64,
        help="readout: hidden channels (0: the linear probe); objects: the MLP's width",
    )
    tr.set_defaults(func=cmd_train)

    em = sub.add_parser(
        "evaluate-model",
        help="collapse metrics, probes, rollout error",
        description="Evaluate a checkpoint on fresh held-out sim episodes, or on recorded "
        "shards (--data, --cell).",
    )
    em.add_argument("--checkpoint", required=True, help="last.pt or a shipped model.pt")
    em.add_argument("--episodes", type=int, default=10, help="held-out episodes, >= 2")
    em.add_argument("--seed", type=int, default=10_000, help="first held-out seed")
    em.add_argument("--steps", type=int, default=120, help="steps per episode")
    em.add_argument("--out", required=True, help="output directory")
    em.add_argument(
        "--data",
        default=None,
        help="score on these recorded shards instead of fresh sim episodes (e.g. a robot's "
        "own, from wm import-bag --objects N); probes: first half of them, scored on the rest",
    )
    em.add_argument(
        "--cell", default=None, help="the work cell whose camera took --data (default: sim)"
    )
    em.add_argument(
        "--baseline", default=None, help="generative baseline checkpoint to score beside it"
    )
    em.add_argument(
        "--objects",
        default=None,
        help="the planner's compact object model (objects.pt) to score beside the latent "
        "rollout: its objects after 5 steps",
    )
    em.set_defaults(func=cmd_evaluate_model)

    up = sub.add_parser(
        "up",
        help="bring up the ROS 2 stack (sim, real, or real against the PyBullet world) without "
        "ros2 launch",
        description="Starts the nodes of the shared stack description (the same ones the "
        "launch files start) with the same parameters file. pybullet: the real-arm profile "
        "(= real sim:=pybullet) against the PyBullet world, on configs/cells/pybullet.yaml.",
    )
    up.add_argument("profile", choices=["sim", "real", "pybullet"])
    up.add_argument(
        "arguments",
        nargs="*",
        metavar="NAME:=VALUE",
        help="the profile's launch arguments, as ros2 launch takes them (launch/README.md), "
        "e.g. wm up real shadow:=true cell_file:=configs/cells/mycell.yaml",
    )
    up.add_argument(
        "--mode",
        default="processes",
        help="processes (default: one per node, as ros2 launch runs them) or inprocess (one "
        "process, a multi-threaded executor; GIL-bound at about half the control rate)",
    )
    up.add_argument(
        "--backend",
        default="",
        help="world-model backend of perception and planner: torch, onnxruntime, tensorrt or "
        "auto (default: the parameters file's, stack.yaml: torch)",
    )
    up.add_argument("--params-file", default=None, help="parameters YAML (default: the stack's)")
    up.add_argument(
        "--model",
        default=None,
        help="model directory (model.pt) for perception and planner (wm up pybullet; default: "
        "the shipped models/default)",
    )
    up.add_argument(
        "--cell",
        default=None,
        help="work-cell file for every node that reads one (default: configs/cells/sim.yaml; "
        "pybullet: configs/cells/pybullet.yaml)",
    )
    up.add_argument("--seconds", type=float, default=None, help="stop after this long")
    up.add_argument("--seed", type=int, default=None, help="sim episode seed (first episode)")
    up.add_argument(
        "--episodes",
        type=int,
        default=None,
        help="run N table-clearing episodes through the stack (seeds SEED..SEED+N-1), write "
        "DIR/report.json (the wm eval report + end-to-end latency) and DIR/episode0.mp4, exit",
    )
    up.add_argument("--out", default=None, help="output directory (with --episodes)")
    up.add_argument(
        "--objects", type=int, default=None, help="objects per episode, 1-6 (with --episodes)"
    )
    _add_video_args(up, "episode0.mp4 (with --episodes)")
    up.set_defaults(func=cmd_up)

    rc = sub.add_parser(
        "record",
        help="record the stack's topics into a rosbag2 bag (MCAP storage)",
        description="Record ROS 2 topics into a new rosbag2 directory (metadata.yaml + .mcap) "
        "that Foxglove, ros2 bag and wm import-bag open. Stops on Ctrl-C / SIGTERM or after "
        "--seconds; writes DIR/record.json with per-topic counts.",
    )
    rc.add_argument("--out", required=True, help="bag directory to create (new or empty)")
    rc.add_argument(
        "--topics",
        nargs="+",
        default=None,
        metavar="T",
        help="topics to record (default: every topic of the stack)",
    )
    rc.add_argument("--seconds", type=float, default=None, help="stop after this long (wall)")
    rc.set_defaults(func=cmd_record)

    ex = sub.add_parser(
        "export",
        help="make a shippable model directory (model.pt, readout.pt, golden.json), or export "
        "the model to ONNX (checked, with parity against torch) or TensorRT engines",
    )
    ex.add_argument("--checkpoint", required=True, help="RUN/last.pt or MODEL_DIR/model.pt")
    ex.add_argument(
        "--format",
        choices=["model", "onnx", "tensorrt"],
        default="model",
        help="model (default): a model directory; onnx: encoder/predictor/proprio .onnx + "
        "manifest.json; tensorrt: the ONNX export, then FP16 engines (needs TensorRT + CUDA)",
    )
    ex.add_argument("--readout", default=None, help="RUN/readout.pt (--format model)")
    ex.add_argument(
        "--out", required=True, help="output directory, e.g. models/default or models/default/onnx"
    )
    ex.add_argument(
        "--engine-dir", default=None, help="TensorRT engine cache (default: OUT/engines)"
    )
    ex.add_argument(
        "--force-engine-update", action="store_true", help="rebuild cached TensorRT engines"
    )
    ex.add_argument(
        "--max-batch", type=int, default=4096, help="TensorRT profile's largest candidate batch"
    )
    ex.set_defaults(func=cmd_export)

    gz = sub.add_parser(
        "gazebo",
        help="generate the Gazebo (gz-sim Harmonic) files of a cell: world, URDF, controllers",
    )
    gzsub = gz.add_subparsers(dest="what", required=True, metavar="{world}")
    gw = gzsub.add_parser(
        "world",
        help="world.sdf, wm_arm.urdf, controllers.yaml, bridge.yaml (and gazebo.json) in --out",
    )
    gw.add_argument("--cell", default=None, help="cell file (default configs/cells/sim.yaml)")
    gw.add_argument("--out", required=True, help="output directory")
    gw.add_argument(
        "--seed", type=int, default=100000, help="episode seed of the objects (as in MuJoCo)"
    )
    gw.add_argument("--objects", type=int, default=3, help="objects on the table, 1-6")
    gw.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="square camera render size in px, K scaled (default: the cell's size)",
    )
    gw.add_argument("--rate", type=float, default=10.0, help="camera rate in Hz (default 10)")
    gw.set_defaults(func=cmd_gazebo)

    ca = sub.add_parser(
        "calibrate",
        help="camera intrinsics (ROS camera_info YAML) and hand-eye (camera pose) calibration",
    )
    casub = ca.add_subparsers(
        dest="what", required=True, metavar="{intrinsics,handeye,sim,collect}"
    )
    ci = casub.add_parser(
        "intrinsics",
        help="calibrate a camera from images of a chessboard or ChArUco board",
        description="Detect the board in every image of DIR, calibrate (pinhole, plumb_bob with "
        "5 coefficients) and write a ROS camera_info YAML. Needs the board in at least 5 images "
        "(10-20 tilted views covering the image are better).",
    )
    ci.add_argument("--images", required=True, help="directory of images (png, jpg, ...)")
    _add_board_args(ci)
    ci.add_argument("--camera-name", default="camera", help="camera_name in the YAML")
    ci.add_argument("--out", required=True, help="camera_info YAML file to write")
    ci.set_defaults(func=cmd_calibrate)
    ch = casub.add_parser(
        "handeye",
        help="camera pose from robot tool poses and board poses (hand-eye)",
        description="Solve the camera pose (eye-to-hand: T_world_cam, world = robot base; "
        "eye-in-hand: T_tool_cam) from a samples YAML (schema: wm_core/calib/io.py) and write "
        "the result YAML with a static_transform for tf2.",
    )
    ch.add_argument("--samples", required=True, help="hand-eye samples YAML")
    ch.add_argument("--mode", required=True, choices=["eye-to-hand", "eye-in-hand"])
    ch.add_argument(
        "--method",
        default="all",
        choices=["tsai", "park", "horaud", "andreff", "daniilidis", "all"],
        help="solver, or all: run every one and keep the lowest residual (default)",
    )
    ch.add_argument("--out", required=True, help="result YAML file to write")
    ch.set_defaults(func=cmd_calibrate)
    cc = casub.add_parser(
        "collect",
        help="record hand-eye samples from the camera and /joint_states while the arm moves",
        description="A small rclpy node: pairs each view of the board (with the camera's "
        "intrinsics) with the tool pose from /joint_states, keeping one pair per still, "
        "distinct pose, and writes the samples file for `wm calibrate handeye`.",
    )
    cc.add_argument("--camera-info", required=True, help="camera_info YAML (intrinsics)")
    _add_board_args(cc)
    cc.add_argument("--samples", type=int, default=15, help="pairs to record")
    cc.add_argument("--tool-link", default="suction_cup", help="link the board is fixed to")
    cc.add_argument("--image-topic", default="/camera/image_raw", help="camera image topic")
    cc.add_argument("--timeout", type=float, default=600.0, help="give up after (s)")
    cc.add_argument("--out", required=True, help="samples YAML file to write")
    cc.set_defaults(func=cmd_calibrate)
    cs = casub.add_parser(
        "sim",
        help="the whole path in MuJoCo: board on the tool, arm sweep, hand-eye -> a cell file",
        description="Calibrate the scene camera of episode SEED (jittered as that episode is) "
        "from images of a ChArUco board on the simulated tool, and write a cell file with the "
        "calibrated camera. Prints the pose error against the simulator's camera.",
    )
    cs.add_argument("--seed", type=int, default=0, help="episode seed (its camera jitter)")
    cs.add_argument("--camera-jitter", type=float, default=0.0, help="degrees, 0-15")
    cs.add_argument("--light-jitter", type=float, default=0.0, help="fraction, 0-1")
    cs.add_argument("--poses", type=int, default=15, help="arm poses in the sweep")
    cs.add_argument("--cell", default=None, help="cell file (default: configs/cells/sim.yaml)")
    cs.add_argument("--out", required=True, help="cell YAML file to write")
    cs.set_defaults(func=cmd_calibrate)

    ch = sub.add_parser(
        "chaos",
        help="fault injection through the running stack: chaos.json + a Markdown table",
        description="Run the sim stack (one process per node, respawned) with one fault per "
        "table-clearing episode: camera dropouts, corrupt frames, NaN joint states, out-of-order "
        "and stale stamps, a clock jump, latent latency spikes, SIGKILL of perception, planner "
        "or sim, e-stops, a CPU hog, then a mixed run. Reports safety violations, time to a "
        "hold, time to recovery, objects dropped or lost and whether each episode completed. "
        "Exits 1 when a target is missed.",
    )
    ch.add_argument("--out", required=True, help="output directory (chaos.json, chaos.md, logs/)")
    ch.add_argument(
        "--faults",
        nargs="+",
        default=None,
        metavar="NAME",
        help="faults to run, in order (default: all; see wm_bringup/chaos.py FAULTS)",
    )
    ch.add_argument("--seed", type=int, default=100000, help="episode seed (every fault)")
    ch.add_argument("--objects", type=int, default=2, help="objects per episode, 1-6")
    ch.set_defaults(func=cmd_chaos)

    be = sub.add_parser("bench", help="benchmarks; print JSON")
    be.add_argument(
        "what", choices=["sim", "model", "planner", "stack", "export"], help="what to benchmark"
    )
    be.add_argument("--out", default="out/bench", help="output directory")
    be.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="stack only: measured seconds per runner mode (default 20)",
    )
    be.add_argument(
        "--annotate",
        action="store_true",
        help="stack only: the driver also records what the annotated video and rerun need "
        "(to compare the rate with and without)",
    )
    be.set_defaults(func=cmd_bench)

    so = sub.add_parser(
        "soak",
        help="continuous clearing through the ROS 2 stack with random resets; health over time",
        description="Runs table-clearing episodes back to back through the stack (random seeds, "
        "some cut short by a reset), samples the control rate, each process's memory, threads "
        "and open files and the warning rate, and judges them after a warm-up. Writes "
        "soak.json and soak.md to --out; exits 1 if a check fails.",
    )
    so.add_argument("--minutes", type=float, default=60.0, help="length of the run (default 60)")
    so.add_argument("--out", default="out/soak", help="output directory")
    so.add_argument("--seed", type=int, default=0, help="seed of the episode seeds and resets")
    so.add_argument("--mode", default="processes", help="processes (default) or inprocess")
    so.add_argument("--sample-s", type=float, default=5.0, help="seconds between samples")
    so.add_argument(
        "--warmup-min",
        type=float,
        default=None,
        help="minutes left out of the verdict (default: a quarter of the run, at most 5)",
    )
    so.set_defaults(func=cmd_soak)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except (UsageError, ConfigError, PathEscapeError, KeyError) as exc:
        msg = exc.args[0] if exc.args else str(exc)
        print(f"wm {args.command}: error: {msg}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
