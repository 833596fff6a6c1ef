"""``wm bench stack``: the stack's end-to-end latency, control rate, CPU and dropped frames, in
both runner modes, in one run.

Per mode, the same workload: start the sim stack (shipped model, the parameters file), start
the episode with seed ``seed`` exactly as ``wm up sim --episodes`` does, let it settle for
``warmup_s``, then measure for ``seconds`` of wall time (less if the episode ends first). The
latency and frame figures are those of :mod:`wm_bringup.episodes`. CPU is read from
``/proc/<pid>/stat`` (user + system time) of each stack process over the measured window, in
percent of one core; in ``inprocess`` mode the nodes share one process and the executor threads
run any node's callbacks, so only the process total exists there.

``record_view`` (``wm bench stack --annotate``): the driver records, over the whole run, what the
annotated video and the rerun recording of ``wm up sim --episodes`` are made from (camera
frames, ``/wm/detections``, ``/wm/plan_markers``, ``/wm/safety/verdict``, joint states), so the
two runs compare the stack's rate with and without it. The stack itself publishes the same
topics either way.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from wm_bringup.episode_view import build_records
from wm_bringup.episodes import (
    LATENCY_DEFINITION,
    LATENCY_TARGET_MS,
    RATE_TARGET_HZ,
    RATE_TOLERANCE,
    Session,
    Window,
    finite_json,
    sim_ns,
    stack_figures,
    start_session,
    stop_session,
)
from wm_bringup.runner import MODES

log = logging.getLogger(__name__)

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def measure(
    session: Session, seed: int, seconds: float, warmup_s: float, record_view: bool = False
) -> dict:
    """Run the workload on a started session; the figures of the measured window."""
    p = session.probe
    start = session.begin(seed, record=record_view, view=record_view)
    t_warm = time.monotonic()
    session.wait("the warm-up", lambda: time.monotonic() - t_warm >= warmup_s, warmup_s + 5.0)
    pids = session.children.pids
    with p.lock:
        first_ns = p.latest_ns
    cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
    own0, t0 = own_cpu_seconds(), time.monotonic()
    final = session.wait(
        "the measured window",
        lambda: session.final_status(start) if time.monotonic() - t0 < seconds else "time",
        seconds + 60.0,
    )
    wall = time.monotonic() - t0
    cpu1 = {name: cpu_seconds(pid) for name, pid in pids.items()}
    own1 = own_cpu_seconds()
    with p.lock:
        last_ns = p.latest_ns if final == "time" else sim_ns(final["stamp_s"])
    session.set_planner(False)
    session.safety_counts()  # commands in flight for the window's last frames arrive meanwhile
    window = p.window_stats(Window(first_ns, last_ns))
    figures = stack_figures([window])
    if record_view:
        frames, view = p.record_images(False), p.take_view()
        records = build_records(frames, view, start.episode_ns) if view is not None else []
        figures["recorded"] = {
            "frames": len(frames),
            "steps_with_detections": sum(1 for r in records if r.phase),
            "steps_with_verdict": sum(1 for r in records if r.verdict),
        }
    cpu = {name: round(100.0 * (cpu1[name] - cpu0[name]) / wall, 1) for name in pids}
    return figures | {
        "window_s": round(wall, 2),
        "episode_ended_early": final != "time",
        "cpu_percent": cpu,
        "cpu_percent_total": round(sum(cpu.values()), 1),
        "cpu_per_node": len(pids) > 1,
        "driver_cpu_percent": round(100.0 * (own1 - own0) / wall, 1),
    }


def bench_stack(
    seconds: float = 20.0,
    seed: int = 100_000,
    *,
    warmup_s: float = 3.0,
    modes: tuple[str, ...] = MODES,
    overrides: dict[str, dict] | None = None,
    log_dir: Path | str = Path("out/bench/stack_logs"),
    record_view: bool = False,
) -> dict:
    """Both runner modes on the same workload; the JSON ``wm bench stack`` prints."""
    if seconds <= 0:
        raise ValueError(f"seconds={seconds} must be > 0")
    result: dict = {
        "workload": {
            "seed": seed,
            "measured_s_per_mode": seconds,
            "warmup_s": warmup_s,
            "stack": "sim profile, wm_bringup config/stack.yaml"
            + (f", overrides {overrides}" if overrides else ""),
            "driver_records_episode_view": record_view,
        },
        "latency_definition": LATENCY_DEFINITION,
        "targets": {
            "e2e_latency_ms_p99": LATENCY_TARGET_MS,
            "control_hz": RATE_TARGET_HZ,
            "control_hz_tolerance": RATE_TOLERANCE,
        },
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "modes": {},
    }
    for mode in modes:
        session, startup_s = start_session(mode, seed, overrides, Path(log_dir) / mode)
        try:
            figures = measure(session, seed, seconds, warmup_s, record_view)
        finally:
            stop_session(session)
        figures["startup_s"] = round(startup_s, 1)
        if not figures["cpu_per_node"]:
            figures["cpu_note"] = (
                "all nodes share one process (and its executor threads): per-node CPU is not "
                "separable; cpu_percent is the whole stack process"
            )
        result["modes"][mode] = figures
        log.info("stack bench %s: %s", mode, figures)
    if set(MODES) <= set(result["modes"]):
        a, b = result["modes"]["inprocess"], result["modes"]["processes"]

        def ratio(key: str) -> float | None:
            return round(b[key] / a[key], 3) if a[key] else None

        result["processes_vs_inprocess"] = {
            "e2e_latency_p50": ratio("e2e_latency_ms_p50"),
            "e2e_latency_p99": ratio("e2e_latency_ms_p99"),
            "achieved_control_hz": ratio("achieved_control_hz"),
            "cpu_percent_total": ratio("cpu_percent_total"),
        }
    return finite_json(result)
