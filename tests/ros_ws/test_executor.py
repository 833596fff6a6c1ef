"""wm_bringup.executor.ThreadedExecutor: a queued callback is submitted once and the spinning
thread waits for a worker instead of looping (rclpy's MultiThreadedExecutor resubmits it on
every ``spin_once`` and starves the workers of the GIL: ros2/rclpy#1452)."""

from __future__ import annotations

import threading
import time

import pytest

DOMAIN = 180  # this module uses 180..189

rclpy = pytest.importorskip("rclpy")

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup  # noqa: E402
from wm_bringup.executor import ThreadedExecutor  # noqa: E402


@pytest.fixture
def context():
    from ros_harness import fresh_domain

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=fresh_domain(DOMAIN))
    yield ctx
    ctx.try_shutdown()


def one_worker(context) -> ThreadedExecutor:
    with pytest.warns(UserWarning, match="single thread"):
        return ThreadedExecutor(num_threads=1, context=context)


def test_a_queued_callback_is_submitted_once_and_spin_once_waits_for_a_worker(context):
    node = rclpy.create_node("wm_test_executor", context=context)
    executor = one_worker(context)
    executor.add_node(node)
    release, blocking = threading.Event(), threading.Event()
    ran: list[float] = []

    def block() -> None:  # occupies the only worker
        blocking.set()
        release.wait(10.0)

    blocker = node.create_timer(0.001, block, MutuallyExclusiveCallbackGroup())
    node.create_timer(0.001, lambda: ran.append(time.monotonic()), MutuallyExclusiveCallbackGroup())
    submitted = []  # what reaches the thread pool
    pool_submit = executor._executor.submit
    executor._executor.submit = lambda fn, *args: submitted.append(fn) or pool_submit(fn, *args)
    try:
        end = time.monotonic() + 5.0
        while len(submitted) < 2 and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.02)
        assert blocking.wait(5.0) and len(submitted) == 2  # the blocker, then the other timer
        node.destroy_timer(blocker)  # it may not come back once released

        for _ in range(20):
            executor.spin_once(timeout_sec=0.02)
        # the other timer waits in the pool's queue behind the blocker: it is not submitted
        # again (rclpy's MultiThreadedExecutor submits it about every other spin_once)
        assert len(submitted) == 2, len(submitted)
        assert ran == []

        release.set()
        end = time.monotonic() + 5.0
        while not ran and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.02)
        assert ran  # nothing was lost: it ran once the worker was free
    finally:
        release.set()
        executor.shutdown(timeout_sec=5.0)
        node.destroy_node()


def test_a_callbacks_exception_reaches_the_spinning_thread(context):
    node = rclpy.create_node("wm_test_executor_raise", context=context)
    executor = ThreadedExecutor(num_threads=2, context=context)
    executor.add_node(node)

    def boom() -> None:
        raise RuntimeError("boom in a timer")

    node.create_timer(0.01, boom)
    try:
        with pytest.raises(RuntimeError, match="boom in a timer"):
            end = time.monotonic() + 5.0
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.02)
    finally:
        executor.shutdown(timeout_sec=5.0)
        node.destroy_node()


def test_a_context_shut_down_under_the_executor_is_a_shutdown_not_an_error():
    """A signal can shut the context down while spin_once builds its wait set; rclpy then
    raises RCLError ("the given context is not valid"). The executor treats it as the
    shutdown it is (it once put a traceback in the in-process stack's log)."""
    from ros_harness import fresh_domain

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=fresh_domain(DOMAIN))
    node = rclpy.create_node("wm_test_executor_shutdown", context=ctx)
    executor = ThreadedExecutor(num_threads=2, context=ctx)
    executor.add_node(node)
    node.create_timer(0.01, lambda: None)
    executor.spin_once(timeout_sec=0.05)
    ctx.try_shutdown()  # what rclpy's SIGINT handler does
    executor.spin_once(timeout_sec=0.05)  # must not raise
    assert not ctx.ok()
    executor.shutdown(timeout_sec=5.0)
    node.destroy_node()
