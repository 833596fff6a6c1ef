"""Shared machinery of the hostile-input fuzz tests (``tests/**/test_fuzz_*.py``) and of
``scripts/fuzz.py``.

A :class:`Target` is one input boundary: a hypothesis strategy of hostile inputs, a ``check``
that feeds one input to the code under test and validates a result it returns, and the
exception types that count as a *clean error* there. Every case must end in a valid result or
a clean error whose message is one non-empty line. Anything else is a crash: another exception
type (TypeError, KeyError, IndexError, RecursionError, MemoryError, numpy errors...), a
multi-line or empty message, or a hang (``timeout_s``, enforced with SIGALRM).
"""

from __future__ import annotations

import atexit
import contextlib
import resource
import shutil
import signal
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

QUICK_ENV = "WM_FUZZ_CASES"


class HangError(Exception):
    """A case ran longer than its target's ``timeout_s``."""


class UnclearError(AssertionError):
    """A clean error type whose message is empty or more than one line."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`HangError` in the main thread after ``seconds`` (SIGALRM)."""

    def on_alarm(signum, frame):
        raise HangError(f"case ran longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Target:
    name: str
    strategy: st.SearchStrategy
    check: Callable[[Any], None]
    clean: tuple[type[BaseException], ...]
    quick: int = 200
    """Cases in the default (``make test``) run."""
    timeout_s: float = 10.0
    max_rss_growth_mb: float | None = None
    """If set: the process's peak RSS may grow at most this much over the run (no case may
    allocate more, e.g. for zip bombs)."""


@dataclass
class Result:
    target: str
    cases: int
    clean_errors: int
    valid: int
    seconds: float
    failure: str | None = None
    peak_rss_growth_mb: float = 0.0

    def to_json(self) -> dict:
        return dict(vars(self))


def check_clean(exc: BaseException) -> None:
    msg = str(exc)
    if not msg.strip() or "\n" in msg:
        raise UnclearError(f"{type(exc).__name__} message is not one line: {msg!r}") from exc


def describe(exc: BaseException) -> str:
    """Type, message, hypothesis notes (the falsifying example) and the innermost frames of
    each failure (of each one in an ExceptionGroup)."""
    if isinstance(exc, BaseExceptionGroup):
        return "\n\n".join(describe(e) for e in exc.exceptions)
    notes = "\n".join(getattr(exc, "__notes__", []))
    frames = traceback.extract_tb(exc.__traceback__)[-4:]
    where = "\n".join(f"  at {f.filename}:{f.lineno} {f.name}" for f in frames)
    return f"{type(exc).__name__}: {exc}\n{where}\n{notes}".strip()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run_target(
    target: Target,
    cases: int,
    *,
    rng_seed: int | None = None,
    derandomize: bool = False,
    raise_on_failure: bool = True,
) -> Result:
    """Run ``cases`` hypothesis examples of ``target``. A crash is re-raised (after shrinking)
    unless ``raise_on_failure`` is false, in which case it is described in the result."""
    counts = {"cases": 0, "clean": 0, "valid": 0}

    def one(case: Any) -> None:
        counts["cases"] += 1
        with time_limit(target.timeout_s):
            try:
                target.check(case)
            except target.clean as exc:
                check_clean(exc)
                counts["clean"] += 1
                return
        counts["valid"] += 1

    test = given(target.strategy)(one)
    test = settings(
        max_examples=cases,
        deadline=None,
        database=None,
        derandomize=derandomize,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        print_blob=True,
    )(test)
    if rng_seed is not None and not derandomize:
        test = seed(rng_seed)(test)
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    failure = None
    try:
        test()
    except Exception as exc:
        if raise_on_failure:
            raise
        failure = describe(exc)
    growth = _rss_mb() - rss0
    result = Result(
        target.name,
        counts["cases"],
        counts["clean"],
        counts["valid"],
        round(time.perf_counter() - t0, 2),
        failure,
        round(growth, 1),
    )
    if target.max_rss_growth_mb is not None and growth > target.max_rss_growth_mb:
        msg = f"{target.name}: peak RSS grew {growth:.0f} MB (limit {target.max_rss_growth_mb})"
        if raise_on_failure:
            raise AssertionError(msg)
        result.failure = (result.failure + "\n" if result.failure else "") + msg
    return result


def scratch_dir(prefix: str) -> Path:
    """A temporary directory for a module's cases, removed when the process exits."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def quick_cases(target: Target) -> int:
    """Cases of the default run: the target's ``quick``, or ``$WM_FUZZ_CASES``."""
    import os

    return int(os.environ.get(QUICK_ENV, target.quick))


def fuzz_tests(targets: list[Target]) -> tuple[Callable, Callable]:
    """The two tests of a fuzz module: each target at its quick count (``make test``,
    derandomized) and at 10^4 cases (``make test-slow``). A module binds them to names
    starting with ``test_`` for pytest to collect."""
    import pytest

    @pytest.mark.parametrize("target", targets, ids=lambda t: t.name)
    def test_fuzz(target: Target) -> None:
        run_target(target, quick_cases(target), derandomize=True)

    @pytest.mark.slow
    @pytest.mark.parametrize("target", targets, ids=lambda t: t.name)
    def test_fuzz_10k(target: Target) -> None:
        r = run_target(target, 10_000)
        assert r.cases >= 10_000

    return test_fuzz, test_fuzz_10k
