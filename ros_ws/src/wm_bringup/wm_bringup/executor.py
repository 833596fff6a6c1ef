"""A multi-threaded rclpy executor without the stock one's busy loop.

rclpy's ``MultiThreadedExecutor`` (9.1.2, the newest wheel on PyPI) hands each ready callback
to a thread pool as a ``Task``. Its ``wait_for_ready_callbacks`` generator first re-yields every
task that is "not executing and not done", and that includes a task still waiting in the pool's
queue. So while a worker has not yet started a task, ``spin_once`` returns at once without
waiting, submits the same task again, and comes straight back: the spinning thread loops,
holding the GIL that the worker needs to start the task. Measured here
(``tests/ros_ws/test_safety_node.py`` on the 2-core VM): about 2,200 ``spin_once`` calls a
second, joint states at 50 Hz delivered 12 times in 2.5 s, and the safety watchdog's 50 ms timer
not run for 1.3 s. Upstream: ros2/rclpy#1452, fixed by ros2/rclpy#1547 after 9.1.2.

:class:`ThreadedExecutor` keeps rclpy's executor and changes one thing: when the generator
hands back a task that is already queued, the spinning thread *waits* (releasing the GIL) until
a worker starts it, instead of submitting it again. The in-process runner and the ROS tests use
it; node processes spin a ``SingleThreadedExecutor``, which does not have the problem. It also
treats the ``RCLError`` that a context shut down by a signal mid-``spin_once`` raises as the
shutdown it is.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from rclpy._rclpy_pybind11 import RCLError
from rclpy.executors import (
    ConditionReachedException,
    ExternalShutdownException,
    MultiThreadedExecutor,
    ShutdownException,
    TimeoutException,
    TimeoutObject,
)
from rclpy.task import Task

log = logging.getLogger(__name__)

QUEUED_WAIT_S = 0.1
"""Longest wait, per ``spin_once``, for a worker to start a queued task (the caller spins
again; a bound keeps ``spin_once(None)`` from hanging if the pool is shutting down)."""


class ThreadedExecutor(MultiThreadedExecutor):
    """``MultiThreadedExecutor`` that submits each ready task to its pool once."""

    def __init__(self, num_threads: int | None = None, *, context=None) -> None:
        super().__init__(num_threads, context=context)
        self._queued: dict[Task, threading.Event] = {}  # submitted, not yet started
        self._queued_lock = threading.Lock()

    def _spin_once_impl(
        self,
        timeout_sec: float | TimeoutObject | None = None,
        wait_condition: Callable[[], bool] = lambda: False,
    ) -> None:
        try:
            handler, _, _ = self.wait_for_ready_callbacks(timeout_sec, None, wait_condition)
        except (
            ExternalShutdownException,
            ShutdownException,
            TimeoutException,
            ConditionReachedException,
        ):
            return
        except RCLError:
            # A signal shut the context down while the wait set was being built: rclpy raises
            # "the given context is not valid" instead of its shutdown exception (seen once in
            # 10 fresh-clone runs, when the episode driver stopped the in-process stack). It is
            # a shutdown: the caller's ``context.ok()`` loop ends.
            if self._context.ok():
                raise
            return
        with self._queued_lock:
            started = self._queued.get(handler)
            if started is None:
                started = self._queued[handler] = threading.Event()
                fresh = True
            else:
                fresh = False
        if not fresh:
            # The generator re-yields a task that waits in the pool's queue: let a worker
            # start it rather than spinning (and resubmitting) while holding the GIL.
            started.wait(_wait_s(timeout_sec))
            return
        self._executor.submit(self._start, handler, started)
        self._futures.append(handler)
        for future in self._futures[:]:
            if future.done():
                self._futures.remove(future)
                future.result()  # raise a callback's exception in the spinning thread

    def shutdown(self, timeout_sec: float | None = None, **kwargs) -> bool:
        """Stop, join the workers, and fetch what the callbacks that finished after the last
        spin raised: a callback racing the nodes' destruction ("cannot use Destroyable because
        destruction was requested") is logged here, once, instead of printed by rclpy's
        ``Future.__del__`` whenever the garbage collector reaches it."""
        ok = super().shutdown(timeout_sec, **kwargs)
        for future in self._futures[:]:
            if future.done() and future.exception() is not None:
                log.debug("a callback raised during shutdown: %s", future.exception())
        self._futures.clear()
        return ok

    def _start(self, handler: Task, started: threading.Event) -> None:
        with self._queued_lock:
            self._queued.pop(handler, None)
        started.set()
        handler()


def _wait_s(timeout_sec: float | TimeoutObject | None) -> float:
    if isinstance(timeout_sec, TimeoutObject):
        timeout_sec = timeout_sec.timeout
    if timeout_sec is None or timeout_sec < 0:
        return QUEUED_WAIT_S
    return min(float(timeout_sec), QUEUED_WAIT_S)
