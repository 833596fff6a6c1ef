"""The runner respawns a node whose process dies (as ``ros2 launch`` with ``respawn=True``),
but not one that refuses to start, and gives up on a crash loop."""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import replace

import pytest

DOMAIN = 195  # this module uses 195

pytest.importorskip("rclpy")

from wm_bringup.runner import ProcessStack, package_paths, process_commands  # noqa: E402
from wm_bringup.stack import EXIT_REFUSED, describe  # noqa: E402


def child(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def wait_for(pred, stack: ProcessStack, timeout: float = 30.0):
    """Call ``stack.ended()`` (which does the respawning) until ``pred()``; -> its last value."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = stack.ended()
        if pred(last):
            return last
        time.sleep(0.05)
    return last


def test_a_dead_child_is_respawned_after_the_delay(tmp_path):
    runs = tmp_path / "runs"
    crash = child(
        f"import os, time; open({str(runs)!r}, 'a').write('x'); time.sleep(0.2); "
        "os.kill(os.getpid(), 9)"
    )
    stack = ProcessStack({"crashy": crash}, [], tmp_path, respawn=True, respawn_delay_s=0.3)
    stack.start()
    try:
        wait_for(lambda _: runs.exists() and len(runs.read_text()) >= 3, stack)
        assert stack.ended() is None  # still being respawned: not an end
        times = stack.respawns["crashy"]
        # every start left its mark, but the newest may not have written it yet
        assert len(times) >= 2 and len(times) <= len(runs.read_text()) <= len(times) + 1
        assert all(b - a >= 0.3 for a, b in zip(times, times[1:], strict=False))  # the delay
    finally:
        stack.stop()


def test_a_refusal_to_start_and_a_crash_loop_end_the_stack(tmp_path):
    refuse = child(f"raise SystemExit({EXIT_REFUSED})")
    stack = ProcessStack({"refuser": refuse}, [], tmp_path, respawn=True, respawn_delay_s=0.1)
    stack.start()
    assert wait_for(lambda e: e is not None, stack) == ("refuser", EXIT_REFUSED)
    assert stack.respawns["refuser"] == []  # it would only refuse again
    stack.stop()

    crash = child("import os; os.kill(os.getpid(), 9)")
    stack = ProcessStack(
        {"loop": crash}, [], tmp_path, respawn=True, respawn_delay_s=0.1, crash_loop=(3, 60.0)
    )
    stack.start()
    assert wait_for(lambda e: e is not None, stack) == ("loop", -signal.SIGKILL)
    assert len(stack.respawns["loop"]) == 3
    stack.stop()

    no_respawn = ProcessStack({"once": crash}, [], tmp_path, respawn=False)
    no_respawn.start()
    assert wait_for(lambda e: e is not None, no_respawn) == ("once", -signal.SIGKILL)
    no_respawn.stop()


def test_the_stack_processes_use_loopback_udp_unless_the_user_chose(tmp_path, monkeypatch):
    """Fast DDS's shared memory can stop a writer's large samples reaching anyone once a reader
    was SIGKILLed (stack.DDS_ENV): the children get UDPv4 unless the environment says."""
    from wm_bringup.stack import DDS_ENV, dds_environment

    assert dds_environment({}) == DDS_ENV == {"FASTDDS_BUILTIN_TRANSPORTS": "UDPv4"}
    assert dds_environment({"FASTDDS_BUILTIN_TRANSPORTS": "DEFAULT"}) == {}
    out = tmp_path / "env"
    show = child(
        f"import os; open({str(out)!r}, 'w').write(os.environ['FASTDDS_BUILTIN_TRANSPORTS'])"
    )
    for given, expected in ((None, "UDPv4"), ("SHM", "SHM")):
        if given is None:
            monkeypatch.delenv("FASTDDS_BUILTIN_TRANSPORTS", raising=False)
        else:
            monkeypatch.setenv("FASTDDS_BUILTIN_TRANSPORTS", given)
        stack = ProcessStack({"show": show}, [], tmp_path, respawn=False)
        stack.start()
        assert wait_for(lambda e: e is not None, stack) == ("show", 0)
        stack.stop()
        assert out.read_text() == expected


def test_a_killed_node_process_comes_back(tmp_path, monkeypatch):
    """SIGKILL of a real node mid-run: the runner starts it again and it configures again."""
    monkeypatch.setenv("ROS_DOMAIN_ID", str(DOMAIN))
    full = describe("sim")
    stack = replace(full, nodes=(full.node("wm_safety"),))
    commands = dict(zip(["wm_safety"], process_commands(stack), strict=True))
    children = ProcessStack(
        commands, package_paths(stack), tmp_path, respawn=True, respawn_delay_s=0.5
    )
    children.start()
    log = tmp_path / "wm_safety.log"

    def ready(n: int) -> bool:
        return log.exists() and log.read_text().count("safety filter ready") >= n

    try:
        wait_for(lambda _: ready(1), children, timeout=90.0)
        assert ready(1), log.read_text()
        first = children.pids["wm_safety"]
        os.kill(first, signal.SIGKILL)
        assert wait_for(lambda _: ready(2), children, timeout=90.0) is None
        assert ready(2), log.read_text()
        assert children.pids["wm_safety"] != first and len(children.respawns["wm_safety"]) == 1
    finally:
        assert children.stop() == 0
