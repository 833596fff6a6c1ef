"""``wm soak``: continuous table clearing through the stack for a long time, with random resets,
sampling the stack's health every few seconds.

The workload is :mod:`wm_bringup.episodes`' (the stack in child processes, the episode driver
outside it), run back to back until the time is up: each episode gets a random seed (from
``seed``), and with probability ``cut_probability`` it is cut short by a reset at a random
moment (mid-motion, the arm possibly holding an object), as an operator would. Every
``sample_s`` seconds a sampler thread records:

- the **control rate**: frame-linked arm commands per second over the interval (it dips while
  the driver resets the world between episodes); per episode, the achieved rate while the
  planner was active (``wm_bringup.episodes.stack_figures``);
- per stack process (one per node in ``processes`` mode, the one stack process in
  ``inprocess`` mode) and for the driver itself: **resident memory** (``VmRSS``), **threads**
  and **open file descriptors** (``/proc/<pid>``), and CPU;
- **warnings and errors**: every WARN/ERROR/FATAL record on ``/rosout`` (per node, per kind),
  and tracebacks in the node logs.

:func:`verdict` judges the samples after a warm-up against the bounds below; the JSON
(``soak.json``) and a Markdown summary (``soak.md``) go to ``out``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wm_bringup.episodes import (
    RATE_TARGET_HZ,
    EpisodeStart,
    Session,
    Window,
    episode_timeout,
    finite_json,
    sim_ns,
    stack_figures,
    start_session,
    stop_session,
)

log = logging.getLogger(__name__)

RSS_SLOPE_BOUND_MB_PER_H = 10.0
"""Fitted resident-memory slope allowed after the warm-up, per process. At the 10 Hz control
rate an hour is 36,000 steps, so 10 MB/h is a leak of about 290 bytes per step (a few Python
objects); anything that keeps a message, an image or a list entry per step grows faster."""
RSS_NOISE_FLOOR_MB = 8.0
"""Growth that is allocator noise, not a trend (glibc and pymalloc arenas, torch's caching
allocator). The high-water mark of a process's RSS after the warm-up may exceed the one it
reached during the warm-up by at most ``max(RSS_NOISE_FLOOR_MB, RSS_SLOPE_BOUND_MB_PER_H *
hours)``.

Why the high-water mark and not the last value: the sim node's RSS moves by up to about
16 MB from one episode to the next (each reset rebuilds the MuJoCo scene; measured 236-264 MB
in two 2-minute soaks, and 194-224 MB rebuilding the scene 25 times in a bare process), in
both directions, so an end-minus-start or a fitted line over a few episodes is noise of that
size. Noise reaches its high-water mark within the first few episodes (by the 5th reset in
the three measurements); a leak keeps raising it. In the 2-minute soak of ``make test`` (50 s
warm-up, about 6 resets; 70 s measured, 700 steps) a leak is caught once it passes the floor
plus the process's own swing: about 12 kB per step for the perception, planner and safety
nodes (flat to 0.1 MB). The hour-long soak adds the fitted slope."""
SIM_NOISE_FLOOR_MB = 16.0
"""The floor for a process that runs the simulator (``wm_sim``; in ``inprocess`` mode the one
stack process): its high-water mark can still step up after the warm-up, without a leak. In
the third 2-minute soak it rose 7.2 MB at the 10th reset (254.6 -> 261.8 MB), against the
8 MB floor; the hour-long soak held it at 254.5 MB for 55 minutes. 16 MB is the largest
episode-to-episode swing measured; a sim leak is caught from about 40 kB per step in the
2-minute soak (a 128 px camera frame is 49 kB). The swing was glibc's growing mmap threshold
(the MuJoCo model and renderers rebuilt at each reset landed in the heap), and it still failed
the 2-minute soak now and then (16.9 MB); the ``wm_sim`` process now fixes the threshold
(``nodekit.fix_mmap_threshold``) and grew 0.86 MB in the next 2-minute soak. The in-process
stack (``stack``) does not, so the floor stays."""
SIM_PROCESSES = ("wm_sim", "stack")
SLOPE_MIN_MINUTES = 20.0
"""The fitted slope is judged only over at least this many measured minutes (many episodes,
so that the sim's per-episode levels average out)."""
THREAD_TOLERANCE = 1
"""A process may end the run with at most this many threads more than it had after the
warm-up: one pool that starts lazily (torch's inter-op threads, a DDS event thread) may appear
once; a leak adds a thread per episode or per step, many over even the 2-minute soak. (Every
node kept exactly the same count in the soaks run so far.)"""
FD_TOLERANCE = 2
"""Likewise for open descriptors (a DDS transport that opens a shared-memory segment or a
socket for a late-discovered peer)."""
RATE_FLOOR_FRACTION = 0.5
"""Every stretch of the run must keep the median per-episode control rate at or above this
fraction of the camera's 10 Hz: a stack that slows down over time fails it."""
RATE_DRIFT_FRACTION = 0.8
"""The median per-episode control rate of the last third of the run must be at least this
fraction of the first third's (after the warm-up)."""
EXPECTED_WARNINGS = (
    # the driver deactivates the planner between episodes: the arm holds (safety watchdog, the
    # sim's cmd_timeout); a reset moves the arm away from the last command (re-sync)
    ("wm_safety", "watchdog: commands stopped"),
    ("wm_safety", "re-syncing, holding"),
    ("wm_safety", "command held ("),
    ("wm_sim", "(cmd_timeout): holding the arm"),
)
"""(node, text) of the warnings that resets cause by design; any other warning or error counts
as unexpected. ``command held`` is the safety filter doing its job (counted per episode)."""
MAX_WARNING_KINDS = 200
"""Distinct warning texts kept (a long run with a noisy node must not grow this without end)."""

PARTIAL_EVERY_S = 300.0
"""A long run writes what it has so far (``soak.partial.json``) this often, so a run that is
stopped early still leaves its samples."""

_DIGITS = re.compile(r"[-+]?\d+(\.\d+)?")


@dataclass(frozen=True)
class SoakConfig:
    minutes: float = 60.0
    """Length of the run (wall minutes, start-up excluded)."""
    seed: int = 0
    """Seed of the random episode seeds and resets."""
    mode: str = "processes"
    """Runner mode (``processes``: one process per node; ``inprocess``)."""
    sample_s: float = 5.0
    """Seconds between samples."""
    warmup_min: float | None = None
    """Minutes excluded from the verdict; None: a quarter of the run, at most 5 minutes."""
    cut_probability: float = 0.3
    """Chance that an episode is cut short by a reset at a random moment."""
    min_cut_s: float = 2.0
    """A cut episode runs at least this long (wall s) before its reset..."""
    max_cut_s: float = 30.0
    """... and at most this long."""

    def __post_init__(self) -> None:
        if not self.minutes > 0:
            raise ValueError(f"minutes={self.minutes} must be > 0")
        if not 0.5 <= self.sample_s <= 60.0:
            raise ValueError(f"sample_s={self.sample_s} must be in [0.5, 60]")
        if self.warmup_min is not None and not 0 <= self.warmup_min < self.minutes:
            raise ValueError(f"warmup_min={self.warmup_min} must be in [0, minutes)")
        if not 0.5 <= self.min_cut_s <= self.max_cut_s:
            raise ValueError(
                f"min_cut_s={self.min_cut_s}, max_cut_s={self.max_cut_s}: need 0.5 <= min <= max"
            )
        if not 0.0 <= self.cut_probability <= 1.0:
            raise ValueError(f"cut_probability={self.cut_probability} must be in [0, 1]")
        if self.mode not in ("processes", "inprocess"):
            raise ValueError(f"mode={self.mode!r} must be processes or inprocess")

    @property
    def warmup_s(self) -> float:
        if self.warmup_min is not None:
            return 60.0 * self.warmup_min
        return 60.0 * min(5.0, self.minutes / 4.0)


# ---------------------------------------------------------------------- /proc
PAGE = os.sysconf("SC_PAGE_SIZE")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_sample(pid: int) -> dict[str, float] | None:
    """RSS (MB), threads, open fds and CPU seconds of ``pid``; None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss_kb = int(fields["VmRSS"].split()[0])
    return {
        "rss_mb": rss_kb / 1024.0,
        "threads": int(fields["Threads"]),
        "fds": fds,
        "cpu_s": (int(stat[11]) + int(stat[12])) / CLK_TCK,
    }


# ---------------------------------------------------------------------- warnings
def warning_kind(node: str, text: str) -> str:
    """A warning's kind: its node and its first 70 characters with the numbers taken out."""
    return f"{node}: {_DIGITS.sub('#', text.splitlines()[0] if text else '')[:70]}"


def expected(node: str, text: str) -> bool:
    return any(node.endswith(n) and t in text for n, t in EXPECTED_WARNINGS)


class WarningTally:
    """WARN and above from /rosout: counts per node, kind and whether they were expected."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.total = 0
        self.unexpected = 0
        self.errors = 0
        self.kinds: Counter[str] = Counter()
        self.other_kinds = 0
        """Records whose kind was not kept (MAX_WARNING_KINDS reached)."""

    def add(self, node: str, level: int, text: str) -> None:
        kind = ("" if expected(node, text) else "UNEXPECTED ") + warning_kind(node, text)
        with self.lock:
            self.total += 1
            self.errors += level >= 40
            self.unexpected += not expected(node, text)
            if kind in self.kinds or len(self.kinds) < MAX_WARNING_KINDS:
                self.kinds[kind] += 1
            else:
                self.other_kinds += 1

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return {"total": self.total, "unexpected": self.unexpected, "errors": self.errors}


def subscribe_rosout(session: Session, tally: WarningTally) -> Any:
    """Count every WARN/ERROR/FATAL that a node logs (``/rosout``) from now on."""
    from rcl_interfaces.msg import Log
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=200)
    qos.reliability = ReliabilityPolicy.RELIABLE

    def on_log(msg: Log) -> None:
        if msg.level >= Log.WARN and msg.name != session.probe.node.get_name():
            tally.add(msg.name, int(msg.level), msg.msg)

    return session.probe.node.create_subscription(Log, "/rosout", on_log, qos)


def tracebacks(log_dir: Path) -> dict[str, int]:
    """Tracebacks per node log (Python errors that bypass /rosout)."""
    out = {}
    for path in sorted(Path(log_dir).glob("*.log")):
        n = path.read_text(errors="replace").count("Traceback (most recent call last)")
        if n:
            out[path.stem] = n
    return out


# ---------------------------------------------------------------------- sampling
class Sampler:
    """Samples the stack's processes, the driver and the control rate every ``period_s``."""

    def __init__(self, session: Session, tally: WarningTally, period_s: float):
        self.session, self.tally, self.period_s = session, tally, period_s
        self.samples: list[dict] = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.t0 = time.monotonic()
        self._last = (self.t0, (0, 0), {}, tally.snapshot())
        self.thread = threading.Thread(target=self._run, name="wm_soak_sampler", daemon=True)

    def start(self) -> None:
        self.sample()
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.sample()
            except Exception:  # a sampler must not end the run; the gap shows in the data
                log.exception("soak sample failed")

    def sample(self) -> dict:
        now = time.monotonic()
        t_prev, counts_prev, cpu_prev, warn_prev = self._last
        probe = self.session.probe
        with probe.lock:
            counts = (probe.sources_total, probe.frames_total)
        commanded, frames = counts[0] - counts_prev[0], counts[1] - counts_prev[1]
        dt = max(now - t_prev, 1e-9)
        procs: dict[str, dict] = {}
        cpu_now: dict[str, float] = {}
        pids = dict(self.session.children.pids) | {"driver": os.getpid()}
        for name, pid in pids.items():
            s = proc_sample(pid)
            if s is None:
                continue
            key = f"{name}:{pid}"
            cpu_now[key] = s.pop("cpu_s")
            if key in cpu_prev and self.samples:
                s["cpu_percent"] = round(100.0 * (cpu_now[key] - cpu_prev[key]) / dt, 1)
            s["pid"] = pid
            s["rss_mb"] = round(s["rss_mb"], 2)
            procs[name] = s
        warn = self.tally.snapshot()
        row = {
            "t_s": round(now - self.t0, 2),
            "control_hz": round(commanded / dt, 3) if self.samples else None,
            "camera_hz": round(frames / dt, 3) if self.samples else None,
            "warnings": warn["total"] - warn_prev["total"],
            "unexpected_warnings": warn["unexpected"] - warn_prev["unexpected"],
            "processes": procs,
            "load_1min": round(os.getloadavg()[0], 2),
        }
        self._last = (now, counts, cpu_now, warn)
        with self.lock:
            self.samples.append(row)
        return row

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=10.0)
        self.sample()


# ---------------------------------------------------------------------- episodes
def soak_episode(session: Session, seed: int, cut_after_s: float | None) -> dict:
    """One episode: reset to ``seed``, run to its end (or cut it after ``cut_after_s`` wall
    seconds); its record (seed, end reason, scores if it ended, stack figures)."""
    p = session.probe
    t0 = time.monotonic()
    start: EpisodeStart = session.begin(seed)
    with p.lock:
        scene = dict(p.statuses[-1]["scene"])
    deadline = None if cut_after_s is None else time.monotonic() + cut_after_s

    def ended() -> Any:
        if deadline is not None and time.monotonic() >= deadline:
            return "cut"
        return session.final_status(start) or session.planner_done(start)

    how = session.wait(f"the end of the episode with seed {seed}", ended, episode_timeout(scene))
    record: dict[str, Any] = {"seed": seed}
    if how == "cut":
        with p.lock:
            end_ns = p.latest_ns
        session.set_planner(False)
        record["end_reason"] = "random_reset"
    else:
        if not isinstance(how, dict):  # the planner is done: end the episode as wm eval does
            p.end_episode()
            how = session.wait("the final scores", lambda: session.final_status(start), 30.0)
            record["end_reason"] = "planner_done"
        else:
            record["end_reason"] = how["end_reason"]
        end_ns = sim_ns(how["stamp_s"])
        session.set_planner(False)
        record |= {k: how[k] for k in ("objects", "cleared", "sim_time_s")}
    session.safety_counts()  # commands in flight for the last frames arrive meanwhile
    figures = stack_figures([p.window_stats(Window(start.started_ns, end_ns))])
    p.forget_before(end_ns)  # the driver keeps only the episode in progress
    return record | {
        "achieved_control_hz": round(figures["achieved_control_hz"], 3),
        "e2e_latency_ms_p99": figures["e2e_latency_ms_p99"],
        "frames_commanded": figures["frames_commanded"],
        "wall_s": round(time.monotonic() - t0, 2),
        "ended_at_s": None,  # filled in by run_soak (seconds since the sampler started)
    }


# ---------------------------------------------------------------------- verdict
def fit_slope(t_s: list[float], y: list[float]) -> float:
    """Least-squares slope of ``y`` per hour (``t_s`` in seconds); NaN under 3 points."""
    if len(t_s) < 3 or max(t_s) - min(t_s) <= 0:
        return float("nan")
    return float(np.polyfit(np.asarray(t_s) / 3600.0, np.asarray(y, float), 1)[0])


def process_series(samples: list[dict], name: str, warmup_s: float) -> dict:
    """RSS, threads and fds of one process: the post-warm-up figures and its checks."""
    rows = [(s["t_s"], s["processes"][name]) for s in samples if name in s["processes"]]
    after = [(t, p) for t, p in rows if t >= warmup_s]
    if len(after) < 3:
        return {"samples_after_warmup": len(after), "passed": False, "why": "too few samples"}
    ts = [t for t, _ in after]
    hours = (ts[-1] - ts[0]) / 3600.0
    rss = [p["rss_mb"] for _, p in after]
    warm_max = max([p["rss_mb"] for t, p in rows if t < warmup_s] or [rss[0]])
    slope = fit_slope(ts, rss)
    growth = slope * hours
    high_water_growth = max(rss) - warm_max
    floor = SIM_NOISE_FLOOR_MB if name in SIM_PROCESSES else RSS_NOISE_FLOOR_MB
    allowed = max(floor, RSS_SLOPE_BOUND_MB_PER_H * hours)
    judge_slope = hours * 60.0 >= SLOPE_MIN_MINUTES
    threads = [p["threads"] for _, p in after]
    fds = [p["fds"] for _, p in after]
    pids = sorted({p["pid"] for _, p in rows})
    checks = {
        "rss_high_water": high_water_growth <= allowed,
        "rss_slope": (not judge_slope) or slope <= RSS_SLOPE_BOUND_MB_PER_H,
        "threads": threads[-1] <= threads[0] + THREAD_TOLERANCE,
        "fds": fds[-1] <= fds[0] + FD_TOLERANCE,
        "same_process": len(pids) == 1,
    }
    return {
        "samples_after_warmup": len(after),
        "rss_mb_start": rows[0][1]["rss_mb"],
        "rss_mb_after_warmup": rss[0],
        "rss_mb_end": rss[-1],
        "rss_mb_max": max(rss),
        "rss_mb_max_warmup": warm_max,
        "rss_high_water_growth_mb": round(high_water_growth, 3),
        "rss_growth_allowed_mb": round(allowed, 3),
        "rss_slope_mb_per_h": round(slope, 3),
        "rss_slope_judged": judge_slope,
        "rss_growth_fitted_mb": round(growth, 3),
        "threads_after_warmup": threads[0],
        "threads_end": threads[-1],
        "threads_min_max": [min(threads), max(threads)],
        "fds_after_warmup": fds[0],
        "fds_end": fds[-1],
        "fds_min_max": [min(fds), max(fds)],
        "pids": pids,
        "checks": checks,
        "passed": all(checks.values()),
    }


def thirds(values: list[float]) -> tuple[list[float], list[float]]:
    n = len(values)
    k = max(1, n // 3)
    return values[:k], values[-k:]


def verdict(samples: list[dict], episodes: list[dict], warmup_s: float, tally: dict) -> dict:
    """The soak's figures after ``warmup_s`` and pass/fail against the module's bounds."""
    names = sorted({n for s in samples for n in s["processes"]})
    per_process = {n: process_series(samples, n, warmup_s) for n in names}
    stack_names = [n for n in names if n != "driver"]
    eps = [
        e
        for e in episodes
        if e["ended_at_s"] is not None
        and e["ended_at_s"] - e["wall_s"] >= warmup_s
        and e["frames_commanded"] >= 5
    ]
    rates = [e["achieved_control_hz"] for e in eps]
    first, last = thirds(rates) if rates else ([], [])
    med = float(np.median(rates)) if rates else float("nan")
    med_first = float(np.median(first)) if first else float("nan")
    med_last = float(np.median(last)) if last else float("nan")
    after = [s for s in samples if s["t_s"] >= warmup_s and s["control_hz"] is not None]
    minutes = (after[-1]["t_s"] - after[0]["t_s"]) / 60.0 if len(after) > 1 else 0.0
    warnings = sum(s["warnings"] for s in after[1:])
    unexpected = sum(s["unexpected_warnings"] for s in after[1:])
    sample_rates = [s["control_hz"] for s in after]
    checks = {
        "processes": all(per_process[n]["passed"] for n in stack_names),
        "episodes_after_warmup": len(eps) >= 3,
        "control_rate_floor": bool(rates) and med >= RATE_FLOOR_FRACTION * RATE_TARGET_HZ,
        "control_rate_drift": bool(rates) and med_last >= RATE_DRIFT_FRACTION * med_first,
        "no_unexpected_warnings": unexpected == 0 and tally["unexpected"] == 0,
        "no_tracebacks": not tally.get("tracebacks"),
    }
    return {
        "warmup_s": warmup_s,
        "measured_minutes": round(minutes, 2),
        "bounds": {
            "rss_slope_mb_per_h": RSS_SLOPE_BOUND_MB_PER_H,
            "rss_noise_floor_mb": RSS_NOISE_FLOOR_MB,
            "rss_noise_floor_mb_sim": SIM_NOISE_FLOOR_MB,
            "rss_slope_min_minutes": SLOPE_MIN_MINUTES,
            "thread_tolerance": THREAD_TOLERANCE,
            "fd_tolerance": FD_TOLERANCE,
            "control_rate_floor_hz": RATE_FLOOR_FRACTION * RATE_TARGET_HZ,
            "control_rate_drift_fraction": RATE_DRIFT_FRACTION,
        },
        "per_process": per_process,
        "control": {
            "episodes_measured": len(eps),
            "episode_rate_hz_median": round(med, 3),
            "episode_rate_hz_min_max": [round(min(rates), 3), round(max(rates), 3)]
            if rates
            else None,
            "episode_rate_hz_median_first_third": round(med_first, 3),
            "episode_rate_hz_median_last_third": round(med_last, 3),
            "sample_rate_hz_mean": round(float(np.mean(sample_rates)), 3) if sample_rates else None,
            "sample_rate_hz_min_max": [min(sample_rates), max(sample_rates)]
            if sample_rates
            else None,
        },
        "warnings": {
            "after_warmup": warnings,
            "per_minute": round(warnings / minutes, 2) if minutes else None,
            "unexpected_after_warmup": unexpected,
            "unexpected_total": tally["unexpected"],
            "total": tally["total"],
            "errors_total": tally["errors"],
        },
        "checks": checks,
        "passed": all(checks.values()),
    }


# ---------------------------------------------------------------------- the run
def run_soak(
    cfg: SoakConfig,
    out_dir: Path | str,
    *,
    overrides: dict[str, dict] | None = None,
    startup_timeout_s: float = 300.0,
) -> dict:
    """Run the soak; write ``soak.json`` and ``soak.md`` to ``out_dir`` and return the report.
    Node logs go to ``out_dir/logs``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(cfg.seed)
    first_seed = int(rng.integers(0, 2**31 - 1))
    session, startup_s = start_session(
        cfg.mode, first_seed, overrides, out / "logs", startup_timeout_s=startup_timeout_s
    )
    log.info("soak: the stack (%s) is up after %.1f s", cfg.mode, startup_s)
    tally = WarningTally()
    episodes: list[dict] = []
    sampler = Sampler(session, tally, cfg.sample_s)
    failure = None
    try:
        session.probe.arm_publishers()
        subscribe_rosout(session, tally)
        sampler.start()
        end = sampler.t0 + 60.0 * cfg.minutes
        seed = first_seed
        last_partial = time.monotonic()
        while time.monotonic() < end:
            cut = None
            if rng.random() < cfg.cut_probability:
                cut = float(rng.uniform(cfg.min_cut_s, max(cfg.min_cut_s, cfg.max_cut_s)))
            cut = min(cut, max(0.5, end - time.monotonic())) if cut else None
            ep = soak_episode(session, seed, cut)
            ep["ended_at_s"] = round(time.monotonic() - sampler.t0, 2)
            episodes.append(ep)
            log.info(
                "soak episode %d (seed %d): %s, %.2f Hz",
                len(episodes) - 1,
                seed,
                ep["end_reason"],
                ep["achieved_control_hz"],
            )
            seed = int(rng.integers(0, 2**31 - 1))
            if time.monotonic() - last_partial >= PARTIAL_EVERY_S:
                last_partial = time.monotonic()
                with sampler.lock:
                    partial = {"config": asdict(cfg), "episodes": episodes}
                    partial["samples"] = list(sampler.samples)
                text = json.dumps(finite_json(partial), indent=1)
                (out / "soak.partial.json").write_text(text + "\n")
        ended = session.problem()
        if ended:
            failure = ended
        respawns = {n: len(t) for n, t in session.children.respawns.items()}
    except Exception as exc:
        failure = f"{type(exc).__name__}: {exc}"
        log.error("soak stopped early: %s", failure)
        respawns = {n: len(t) for n, t in session.children.respawns.items()}
    finally:
        sampler.stop()
        stop_session(session)
    snapshot = tally.snapshot() | {"tracebacks": tracebacks(out / "logs")}
    result = verdict(sampler.samples, episodes, cfg.warmup_s, snapshot)
    if failure or any(respawns.values()):
        result["checks"]["ran_to_the_end"] = False
        result["passed"] = False
    else:
        result["checks"]["ran_to_the_end"] = True
    report = {
        "config": asdict(cfg),
        "startup_s": round(startup_s, 2),
        "cpu_count": os.cpu_count(),
        "failure": failure,
        "respawns": respawns,
        "episodes": episodes,
        "end_reasons": dict(Counter(e["end_reason"] for e in episodes)),
        "warning_kinds": dict(tally.kinds.most_common()),
        "warning_kinds_not_kept": tally.other_kinds,
        "tracebacks": snapshot["tracebacks"],
        **result,
        "samples": sampler.samples,
    }
    report = finite_json(report)
    (out / "soak.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "soak.partial.json").unlink(missing_ok=True)
    (out / "soak.md").write_text(markdown(report))
    return report


def markdown(report: dict) -> str:
    """A short human summary of a soak report."""
    cfg = report["config"]

    def num(v: Any, fmt: str = ".1f") -> str:
        return (
            "n/a"
            if v is None or (isinstance(v, float) and not math.isfinite(v))
            else format(v, fmt)
        )

    lines = [
        f"# Soak: {cfg['minutes']:g} min, {cfg['mode']}, seed {cfg['seed']}",
        "",
        f"**{'PASSED' if report['passed'] else 'FAILED'}**; warm-up {report['warmup_s']:.0f} s "
        f"excluded, {report['measured_minutes']:.1f} min measured, "
        f"{len(report['episodes'])} episodes ({report['end_reasons']}), "
        f"respawns {report['respawns']}"
        + (f", failure: {report['failure']}" if report["failure"] else ""),
        "",
        "| process | RSS after warm-up / end / max (MB) | high-water growth / allowed (MB) | "
        "slope (MB/h) | threads (warm-up / end / max) | fds (warm-up / end / max) | passed |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, p in report["per_process"].items():
        if "rss_mb_end" not in p:
            lines.append(f"| {name} | {p.get('why')} | | | | | no |")
            continue
        lines.append(
            f"| {name} | {p['rss_mb_after_warmup']:.1f} / {p['rss_mb_end']:.1f} / "
            f"{p['rss_mb_max']:.1f} | {num(p['rss_high_water_growth_mb'])} / "
            f"{num(p['rss_growth_allowed_mb'])} | {num(p['rss_slope_mb_per_h'])}"
            f"{'' if p['rss_slope_judged'] else ' (not judged)'} | "
            f"{p['threads_after_warmup']} / {p['threads_end']} / {p['threads_min_max'][1]} | "
            f"{p['fds_after_warmup']} / {p['fds_end']} / {p['fds_min_max'][1]} | "
            f"{'yes' if p['passed'] else 'NO'}"
            + ("" if name != "driver" else " (not judged)")
            + " |"
        )
    c, w = report["control"], report["warnings"]
    lines += [
        "",
        "- control rate per episode (planner active): median "
        f"{num(c['episode_rate_hz_median'], '.2f')} Hz "
        f"over {c['episodes_measured']} episodes, min/max {c['episode_rate_hz_min_max']}, "
        f"first third {num(c['episode_rate_hz_median_first_third'], '.2f')}, last third "
        f"{num(c['episode_rate_hz_median_last_third'], '.2f')}",
        "- control rate per sample (resets included): mean "
        f"{num(c['sample_rate_hz_mean'], '.2f')} Hz, "
        f"min/max {c['sample_rate_hz_min_max']}",
        f"- warnings after warm-up: {w['after_warmup']} ({num(w['per_minute'], '.2f')}/min), "
        f"unexpected {w['unexpected_after_warmup']} (whole run {w['unexpected_total']}); "
        f"tracebacks {report['tracebacks'] or 'none'}",
        f"- checks: {report['checks']}",
        "",
        "Warning kinds (whole run):",
        "",
        *[f"- {n} x {k}" for k, n in report["warning_kinds"].items()],
        "",
    ]
    return "\n".join(lines)
