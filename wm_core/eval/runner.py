"""Run a policy for N seeded episodes and write ``report.json`` (+ an mp4 of episode 0).

The episode-0 video (``video``): ``annotated`` (default) records a
:class:`~wm_core.viz.record.StepRecord` per step (references to what the policy saw and
decided, plus a render for people) and draws the overlay after the episode
(:mod:`wm_core.viz.annotate`); ``raw`` is the plain scene render; ``none`` writes no video.
``rerun``: also write episode 0 as a rerun recording (:mod:`wm_core.viz.rerun_log`). Both are
made after the episode, outside the timed control step."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from wm_core.cell import Workcell, sim_cell
from wm_core.eval.policies import make_policy
from wm_core.safety import FilterConfig, SafetyFilter
from wm_core.safety.filter import STATUSES as FILTER_STATUSES
from wm_core.sim import SceneConfig, TableClearingEnv
from wm_core.sim.calibration import calibrate_camera
from wm_core.sim.safety import EVENT_KINDS
from wm_core.viz.record import StepRecord, record_from_policy

log = logging.getLogger(__name__)

VIDEO_SIZE = 256
"""Side (px) of the raw video's scene render."""
ANNOTATED_RENDER_SIZE = 256
"""Side (px) of the render for people in the annotated video's second panel: twice the
policy's camera, the raw video's size (kept in memory for the whole episode: 900 steps of
256 px are about 180 MB; 512 px would be four times that)."""
VIDEO_MODES = ("annotated", "raw", "none")
REPORT_VERSION = 1


def safe_step(env: TableClearingEnv, flt: SafetyFilter, action: np.ndarray):
    """The only way the runner moves the arm: action -> IK joint target -> hard safety filter
    -> joint command. A non-finite or malformed action becomes a hold, never a crash."""
    a = np.asarray(action, dtype=float).reshape(-1)
    if a.shape == (4,) and np.isfinite(a).all():
        q_target, _, _ = env.cartesian_target(a)
        suction = bool(a[3] > 0)
    else:
        q_target, suction = np.full(6, np.nan), env.suction
    res = flt.filter(q_target, suction, env.joint_positions())
    q = env.q_cmd if res.q is None else res.q
    return (*env.step_joint(q, res.suction), res)


def make_filter(cfg: SceneConfig, cell: Workcell) -> SafetyFilter:
    return SafetyFilter(FilterConfig(control_dt=1 / cfg.control_hz), cell)


def run_episode(
    env: TableClearingEnv,
    policy,
    seed: int,
    video: list | None = None,
    flt=None,
    steps: list[StepRecord] | None = None,
    people_render: bool = True,
) -> dict:
    """One episode; returns its metrics plus per-step wall-clock latencies (ms).

    ``video``: a list the raw scene renders are appended to. ``steps``: a list the per-step
    records (for the annotated video and rerun) are appended to; taking them costs a render
    and a few references per step, outside the timed step (``people_render``: the render for
    the annotated video's second panel; rerun needs none)."""
    obs, info = env.reset(seed)
    policy.reset(seed)
    flt = flt or make_filter(env.cfg, env.cell)
    flt.reset(obs["joint_pos"], suction=False)
    latencies = []
    dt = 1.0 / env.cfg.control_hz
    while True:
        if video is not None:
            video.append(env.render("scene_cam", VIDEO_SIZE))
        render = None
        if steps is not None and people_render:
            render = env.render("scene_cam", ANNOTATED_RENDER_SIZE)  # [S, S, 3]
        t0 = time.perf_counter()
        action = policy.act(obs, info if policy.privileged else None)
        seen = obs
        obs, _, terminated, truncated, info, res = safe_step(env, flt, action)
        latencies.append((time.perf_counter() - t0) * 1e3)
        if steps is not None:
            last = getattr(policy, "last_info", None) or {}
            steps.append(
                record_from_policy(len(steps), len(steps) * dt, seen, last, res.status, render)
            )
        if terminated or truncated or getattr(policy, "done", False):
            break
    if video is not None:
        video.append(env.render("scene_cam", VIDEO_SIZE))
    m = env.episode_metrics()
    m["seed"] = seed
    m |= episode_ending(env, policy, info, terminated)
    m["latencies_ms"] = latencies
    m["filter"] = dict(flt.counts)
    if hasattr(policy, "episode_stats"):
        m["policy_stats"] = policy.episode_stats()
    return m


def episode_ending(env: TableClearingEnv, policy, info: dict, terminated: bool) -> dict:
    """How the episode ended, scored with the simulator's ground truth.

    ``ended_by``: ``cleared`` (the world says every object is in the bin or off the table),
    ``done`` (the policy declared the table clear), ``gave_up`` (the policy stopped after its
    attempt budget) or ``time_limit``. ``false_done``: the policy declared done while an
    object was still on the table: a silent failure. ``left_on_table``: each object still
    there, with its colour, shape, size and position, and what the policy's readout made of
    it on the last frame (for the readout's miss report)."""
    left = np.flatnonzero(~(info["cleared"] | info["dropped"]))  # [L] object indices
    if terminated:
        ended_by = "cleared"
    elif getattr(policy, "done", False):
        ended_by = "gave_up" if getattr(policy, "gave_up", False) else "done"
    else:
        ended_by = "time_limit"
    pos = info["object_pos"][left]  # [L, 3]
    prob = policy.object_probability(pos) if hasattr(policy, "object_probability") else None
    rows = []
    for j, i in enumerate(left):
        spec = env.objects[i]
        rows.append(
            {
                "name": spec.name,
                "shape": spec.shape,
                "half_size": [round(float(v), 4) for v in spec.half_size],
                "rgb": [round(float(v), 3) for v in spec.rgba[:3]],
                "pos": [round(float(v), 4) for v in pos[j]],
                "readout_prob": None if prob is None else round(float(prob[j]), 4),
            }
        )
    return {
        "ended_by": ended_by,
        "false_done": bool(ended_by == "done" and len(left) > 0),
        "left_on_table": rows,
    }


def write_video(frames: list[np.ndarray], path: Path, fps: float) -> None:
    import imageio.v2 as imageio

    with imageio.get_writer(path, fps=fps, codec="libx264", quality=7, macro_block_size=16) as w:
        for f in frames:
            w.append_data(f)


def evaluate(
    policy_name: str,
    episodes: int,
    seed: int,
    cfg: SceneConfig,
    out_dir: Path,
    video: str = "annotated",
    progress: bool = True,
    policy_options: dict | None = None,
    cell: Workcell | None = None,
    calibrate: bool = False,
    rerun: Path | None = None,
) -> dict:
    """Run ``episodes`` episodes with seeds ``seed .. seed+episodes-1`` in ``cell`` (default:
    the sim cell, which the scene is built from); write the report.

    ``calibrate``: before each episode, calibrate that episode's (jittered) scene camera with
    the board-on-the-tool sweep (``wm_core.sim.calibration``) and give the policy the
    calibrated camera; it never reads the simulator's camera pose. The report gets each
    episode's calibration and pose error.

    ``video``: one of VIDEO_MODES (episode 0's mp4). ``rerun``: an .rrd file for episode 0."""
    if video not in VIDEO_MODES:
        raise ValueError(f"video={video!r} must be one of {VIDEO_MODES}")
    cell = cell or sim_cell()
    policy = make_policy(policy_name, cfg, cell, **(policy_options or {}))
    if calibrate and not hasattr(policy, "set_camera"):
        raise ValueError(f"--calibrate: policy {policy_name!r} does not use the camera model")
    cfg = dataclasses.replace(cfg, render_images=bool(getattr(policy, "needs_images", True)))
    env = TableClearingEnv(cfg, cell)
    results, frames, steps = [], [], []
    episode0_cell = cell
    t_start = time.perf_counter()
    try:
        for i in tqdm(
            range(episodes),
            desc=f"eval {policy_name}",
            unit="ep",
            disable=not progress,
            leave=False,
        ):
            calibration = None
            if calibrate:
                calibration = calibrate_camera(cfg, seed + i, cell)
                policy.set_camera(calibration.cell.camera)
            if i == 0 and calibration is not None:
                episode0_cell = calibration.cell  # the overlay uses the camera the policy had
            result = run_episode(
                env,
                policy,
                seed + i,
                frames if (video == "raw" and i == 0) else None,
                steps=steps if (i == 0 and (video == "annotated" or rerun)) else None,
                people_render=video == "annotated",
            )
            if calibration is not None:
                result["calibration"] = calibration.summary()
            results.append(result)
    finally:
        env.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    report = build_report(policy_name, seed, cfg, results)
    if hasattr(policy, "settings"):
        report["planner_settings"] = policy.settings
    report["wall_s"] = round(time.perf_counter() - t_start, 2)
    report |= write_episode0_media(
        out_dir, video, frames, steps, episode0_cell, cfg.control_hz, rerun, policy
    )
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def write_episode0_media(
    out_dir: Path,
    video: str,
    frames: list[np.ndarray],
    steps: list[StepRecord],
    cell: Workcell,
    fps: float,
    rerun: Path | None = None,
    policy=None,
    app_id: str = "wm eval",
) -> dict:
    """Episode 0's mp4 (raw frames or annotated records) and rerun file -> report fields."""
    out: dict = {}
    vpath = out_dir / "episode0.mp4"
    if video == "raw" and frames:
        write_video(frames, vpath, fps=fps)
        out |= {"video": vpath.name, "video_mode": "raw"}
    elif video == "annotated" and steps:
        from wm_core.viz.annotate import AnnotateConfig, write_annotated_video

        tcfg = getattr(policy, "tcfg", None)
        acfg = AnnotateConfig(fps=fps)
        if tcfg is not None:
            acfg = dataclasses.replace(acfg, surprise_threshold=tcfg.surprise_threshold)
        n, w, h = write_annotated_video(steps, cell, vpath, acfg)
        out |= {"video": vpath.name, "video_mode": "annotated", "video_size": [w, h]}
        out["video_frames"] = n
    if rerun is not None and steps:
        from wm_core.viz.rerun_log import write_rrd

        write_rrd(steps, cell, Path(rerun), app_id=app_id)
        out["rerun"] = str(rerun)
    return out


def build_report(policy_name: str, seed: int, cfg: SceneConfig, results: list[dict]) -> dict:
    lat = np.concatenate([r["latencies_ms"] for r in results]) if results else np.zeros(1)
    total = sum(r["objects"] for r in results)
    cleared = sum(r["cleared"] for r in results)
    safety = {k: int(sum(r["safety"][k] for r in results)) for k in EVENT_KINDS}
    return {
        "report_version": REPORT_VERSION,
        "policy": policy_name,
        "episodes": len(results),
        "seed": seed,
        "objects_per_episode": cfg.n_objects,
        "camera_jitter_deg": cfg.camera_jitter_deg,
        "light_jitter": cfg.light_jitter,
        "camera_shift": cfg.camera_shift,
        "appearance_jitter": cfg.appearance_jitter,
        "table_height_jitter": cfg.table_height_jitter,
        "max_episode_s": cfg.max_episode_s,
        "objects_total": total,
        "objects_cleared": cleared,
        "clear_rate": cleared / total if total else 0.0,
        "full_clear_rate": float(np.mean([r["cleared"] == r["objects"] for r in results])),
        "objects_dropped": sum(r["dropped"] for r in results),
        "false_done_episodes": int(sum(r.get("false_done", False) for r in results)),
        "ended_by": {
            k: int(sum(r.get("ended_by") == k for r in results))
            for k in ("cleared", "done", "gave_up", "time_limit")
        },
        "safety_violations": safety,
        "safety_violations_total": sum(safety.values()),
        "mean_episode_sim_s": float(np.mean([r["sim_time_s"] for r in results])),
        "control_hz": cfg.control_hz,
        "physics_hz": 1.0 / cfg.physics_dt,
        "step_latency_ms_p50": float(np.percentile(lat, 50)),
        "step_latency_ms_p99": float(np.percentile(lat, 99)),
        "safety_filter": {
            k: int(sum(r["filter"].get(k, 0) for r in results)) for k in FILTER_STATUSES
        },
        "per_episode": [
            {
                k: r[k]
                for k in (
                    "seed",
                    "objects",
                    "cleared",
                    "dropped",
                    "sim_time_s",
                    "safety",
                    "filter",
                    "calibration",
                    "ended_by",
                    "false_done",
                    "left_on_table",
                )
                if k in r
            }
            | _done_checks(r)
            for r in results
        ],
    } | _policy_figures(results)


def _done_checks(r: dict) -> dict:
    """The episode's checks of "done" (park, re-read), for policies that make them."""
    stats = r.get("policy_stats", {})
    if "verifications" not in stats:
        return {}
    return {"done_verifications": stats["verifications"], "verify_found": stats["verify_found"]}


def _policy_figures(results: list[dict]) -> dict:
    """Planner figures, for policies that report them (``episode_stats``)."""
    stats = [r["policy_stats"] for r in results if "policy_stats" in r]
    if not stats:
        return {}
    plan = np.concatenate([s["plan_ms"] for s in stats] + [np.zeros(0)])
    act = np.concatenate([s["act_ms"] for s in stats] + [np.zeros(0)])
    out = {
        "surprise_events": int(sum(s["surprise_events"] for s in stats)),
        "holds": int(sum(s["holds"] for s in stats)),
        "bad_input_steps": int(sum(s["bad_input"] for s in stats)),
        "done_verifications": int(sum(s.get("verifications", 0) for s in stats)),
        "done_verifications_that_found_objects": int(sum(s.get("verify_found", 0) for s in stats)),
    }
    if len(plan):
        out |= {
            "plan_latency_ms_p50": float(np.percentile(plan, 50)),
            "plan_latency_ms_p99": float(np.percentile(plan, 99)),
        }
    if len(act):  # the rate the whole policy step (encode, read out, plan) sustains
        out |= {
            "policy_step_ms_p50": float(np.percentile(act, 50)),
            "policy_step_ms_p99": float(np.percentile(act, 99)),
            "planner_hz": float(1e3 / np.mean(act)),
        }
    return out


def summary_table(report: dict) -> str:
    """A one-screen human summary of a report."""
    rows = [
        ("policy", report["policy"]),
        ("episodes x objects", f"{report['episodes']} x {report['objects_per_episode']}"),
        (
            "cleared",
            f"{report['objects_cleared']}/{report['objects_total']} ({report['clear_rate']:.1%})",
        ),
        ("full clears", f"{report['full_clear_rate']:.1%}"),
        ("dropped", report["objects_dropped"]),
        ("false 'done' episodes", report.get("false_done_episodes", 0)),
        ("safety events", report["safety_violations_total"]),
    ]
    rows += [(f"  {k}", v) for k, v in report["safety_violations"].items() if v]
    rows += [
        ("mean episode (sim s)", f"{report['mean_episode_sim_s']:.1f}"),
        ("control rate (Hz)", f"{report['control_hz']:g}"),
        (
            "step latency p50/p99 (ms)",
            f"{report['step_latency_ms_p50']:.2f} / {report['step_latency_ms_p99']:.2f}",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
