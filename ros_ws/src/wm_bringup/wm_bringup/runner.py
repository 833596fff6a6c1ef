"""Run the stack without ``ros2 launch``: the same nodes, parameters file and remappings.

Two modes, both from :func:`wm_bringup.stack.describe`:

- ``inprocess``: every node in this process, one multi-threaded executor
  (:class:`wm_bringup.executor.ThreadedExecutor`), its own rclpy
  context. Each node gets exactly the ``--ros-args`` a process would (``cli_args``).
- ``processes``: one ``python -m <module> --ros-args ...`` process per node (what launch does
  with the console scripts); Ctrl-C / SIGTERM is forwarded as SIGINT, then SIGTERM after a grace
  period.

:func:`up` is the entry point for ``python -m wm_bringup`` and for ``wm up``.
:func:`launch_children` starts either mode in child processes (the whole in-process stack is
then one ``python -m wm_bringup`` child), for a caller that stays outside the stack: the episode
driver and ``wm bench stack`` (:mod:`wm_bringup.episodes`).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from wm_bringup.stack import (
    CRASH_LOOP,
    EXIT_REFUSED,
    GAZEBO_NEEDS_ROS2,
    RESPAWN_DELAY_S,
    SIM_NODES,
    Stack,
    dds_environment,
    describe,
)

log = logging.getLogger(__name__)

MODES = ("inprocess", "processes")


class InProcessStack:
    """The stack's nodes in this process. ``start()``, ``spin(seconds)``, ``shutdown()``."""

    def __init__(self, stack: Stack, handle_signals: bool = False):
        self.stack = stack
        self.handle_signals = handle_signals
        """Install rclpy's SIGINT/SIGTERM handlers (a CLI process; not inside tests)."""
        self.nodes: dict[str, object] = {}
        self.context = None
        self.executor = None

    def start(self) -> None:
        """Create, configure and activate every node (raise StartupError, logged, if one
        refuses; the nodes already started are shut down)."""
        import rclpy
        from rclpy.signals import SignalHandlerOptions

        from wm_bringup.executor import ThreadedExecutor
        from wm_bringup.nodekit import StartupError

        self.context = rclpy.Context()
        handlers = SignalHandlerOptions.ALL if self.handle_signals else SignalHandlerOptions.NO
        rclpy.init(context=self.context, signal_handler_options=handlers)
        self.executor = ThreadedExecutor(num_threads=4, context=self.context)
        try:
            for spec in self.stack.running():
                cls = importlib.import_module(spec.module).NODE_CLASS
                node = cls(
                    spec.name,
                    context=self.context,
                    cli_args=spec.ros_args(self.stack.params_file),
                )
                self.nodes[spec.name] = node
                node.autostart()
                self.executor.add_node(node)
        except StartupError:
            self.shutdown()
            raise

    def spin(self, seconds: float | None = None) -> None:
        """Spin until ``seconds`` pass (None: until shutdown / Ctrl-C)."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while self.context.ok() and (deadline is None or time.monotonic() < deadline):
            self.executor.spin_once(timeout_sec=0.1)

    def shutdown(self) -> None:
        """Stop the executor (callbacks in flight finish), then free and destroy the nodes."""
        if self.executor is not None:
            for node in self.nodes.values():
                self.executor.remove_node(node)
            self.executor.shutdown(timeout_sec=5.0)
        for node in reversed(list(self.nodes.values())):
            if hasattr(node, "stop"):  # a wm node (a test may add plain nodes)
                node.stop()
        for node in self.nodes.values():
            node.destroy_node()
        self.nodes = {}
        if self.context is not None:
            self.context.try_shutdown()
        if self.handle_signals:
            from rclpy.signals import uninstall_signal_handlers

            uninstall_signal_handlers()


def package_paths(stack: Stack) -> list[str]:
    """Directories that make the stack's packages (and the wm_core this process imports)
    importable, for child processes."""
    paths = []
    for pkg in ("wm_core", "wm_bringup", *sorted({n.package for n in stack.nodes})):
        spec = importlib.util.find_spec(pkg)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(f"package {pkg} is not importable (see launch/README.md)")
        root = str(Path(spec.origin).resolve().parents[1])
        if root not in paths:
            paths.append(root)
    return paths


def process_commands(stack: Stack) -> list[list[str]]:
    """The command line of each node process."""
    return [
        [sys.executable, "-m", n.module, *n.ros_args(stack.params_file)] for n in stack.running()
    ]


class ProcessStack:
    """Named child processes of a stack: start, watch (and respawn), stop (SIGINT, then SIGTERM).

    With ``respawn`` (what launch_ros does with ``respawn=True``), a child whose process dies
    (a crash, a signal) is started again ``respawn_delay_s`` later; :meth:`ended` reports only
    the ends that are final: a clean exit, a node refusing to start (``EXIT_REFUSED``), or a
    crash loop (more than ``CRASH_LOOP[0]`` respawns within ``CRASH_LOOP[1]`` s).
    With ``log_dir``, each child's output goes to ``<log_dir>/<name>.log`` (else to ours)."""

    def __init__(
        self,
        commands: dict[str, list[str]],
        paths: list[str],
        log_dir=None,
        respawn: bool = False,
        respawn_delay_s: float = RESPAWN_DELAY_S,
        crash_loop: tuple[int, float] = CRASH_LOOP,
    ):
        self.commands = commands
        self.paths = paths
        self.log_dir = None if log_dir is None else Path(log_dir)
        self.respawn, self.respawn_delay_s, self.crash_loop = respawn, respawn_delay_s, crash_loop
        self.procs: dict[str, subprocess.Popen] = {}
        self.respawns: dict[str, list[float]] = {name: [] for name in commands}
        """Monotonic times at which each node was started again."""
        self._due: dict[str, float] = {}  # name -> when its respawn is due

    def start(self) -> None:
        for name in self.commands:
            self._spawn(name, append=False)

    def _spawn(self, name: str, append: bool) -> None:
        env = dict(os.environ)
        env |= dds_environment(env)
        env["PYTHONPATH"] = os.pathsep.join([*self.paths, env.get("PYTHONPATH", "")])
        out = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_path(name), "ab" if append else "wb")  # noqa: SIM115
        self.procs[name] = subprocess.Popen(
            self.commands[name],
            env=env,
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
        )
        if out is not None:
            out.close()  # the child holds its own descriptor

    def log_path(self, name: str) -> Path | None:
        return None if self.log_dir is None else self.log_dir / f"{name}.log"

    @property
    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items()}

    def ended(self) -> tuple[str, int] | None:
        """(name, exit status) of a child that ended for good, or None while every child runs
        or waits for its respawn (call it periodically: it also does the respawning)."""
        now = time.monotonic()
        for name, p in self.procs.items():
            rc = p.poll()
            if rc is None:
                continue
            due = self._due.get(name)
            if due is not None:
                if now >= due:
                    del self._due[name]
                    self.respawns[name].append(now)
                    log.warning("respawning node %s", name)
                    self._spawn(name, append=True)
                continue
            if not self.respawn or rc in (0, EXIT_REFUSED) or self._looping(name, now):
                return name, rc
            log.warning(
                "node %s died (status %s): respawning in %.1f s", name, rc, self.respawn_delay_s
            )
            self._due[name] = now + self.respawn_delay_s
        return None

    def _looping(self, name: str, now: float) -> bool:
        most, window = self.crash_loop
        recent = [t for t in self.respawns[name] if now - t < window]
        if len(recent) >= most:
            log.error("node %s died %d times within %.0f s: not respawning it", name, most, window)
            return True
        return False

    def stop(self, grace_s: float = 5.0) -> int:
        """Stop every child; the first bad exit status (0 if all ended cleanly)."""
        self._due.clear()
        return _stop(self.procs, grace_s)


def launch_children(
    profile: str = "sim",
    *,
    mode: str = "processes",
    backend: str = "",
    params_file: str | Path | None = None,
    overrides: dict[str, dict] | None = None,
    log_dir: Path | None = None,
    respawn: bool = True,
    arguments: dict[str, str] | None = None,
) -> ProcessStack:
    """Start the stack in child processes and return them (started; with ``respawn``, a node
    process that dies is started again, as ``ros2 launch`` does). ``arguments``: the profile's
    launch arguments (``NAME:=VALUE`` as strings, ``sim`` included).

    ``processes``: one child per node. ``inprocess``: one child, ``python -m wm_bringup`` with
    the same profile, parameters file and overrides, running every node in one process."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} must be one of {MODES}")
    launch_args = dict(arguments or {})
    sim = launch_args.pop("sim", None)
    stack = describe(
        profile,
        sim=sim,
        backend=backend,
        params_file=params_file,
        overrides=overrides or {},
        arguments=launch_args,
    )
    if mode == "processes":
        commands = {
            n.name: cmd for n, cmd in zip(stack.running(), process_commands(stack), strict=True)
        }
    else:
        cmd = [sys.executable, "-m", "wm_bringup", profile, "--mode", "inprocess"]
        cmd += ["--backend", backend, "--params-file", str(stack.params_file)]
        cmd += [f"{k}:={v}" for k, v in (arguments or {}).items()]
        for node, params in (overrides or {}).items():
            for key, value in params.items():
                cmd += ["--set", f"{node}:{key}={json.dumps(value)}"]
        commands = {"stack": cmd}
    children = ProcessStack(commands, package_paths(stack), log_dir, respawn=respawn)
    children.start()
    return children


def run_processes(
    stack: Stack,
    seconds: float | None = None,
    grace_s: float = 5.0,
    log_dir: Path | None = None,
    respawn: bool = True,
) -> int:
    """Start one process per node; a node whose process dies is respawned (``respawn``); stop
    all on a signal, after ``seconds``, or when a node ends for good (a clean exit, a refusal
    to start, a crash loop). With ``log_dir``, each node's output goes to
    ``<log_dir>/<node>.log`` (else to ours).

    Returns 1 when a node refused to start or ended with an error status, else 0."""
    commands = {
        n.name: cmd for n, cmd in zip(stack.running(), process_commands(stack), strict=True)
    }
    children = ProcessStack(commands, package_paths(stack), log_dir, respawn=respawn)
    children.start()
    stopping = {"signal": False}

    def on_signal(signum, frame) -> None:
        stopping["signal"] = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        deadline = None if seconds is None else time.monotonic() + seconds
        while not stopping["signal"] and (deadline is None or time.monotonic() < deadline):
            ended = children.ended()
            if ended is not None:
                name, rc = ended
                why = "refused to start" if rc == EXIT_REFUSED else f"exited with status {rc}"
                log.error("node %s %s: stopping the stack", name, why)
                code = 1 if rc else 0
                break
            time.sleep(0.2)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        code = (1 if children.stop(grace_s) else 0) or code
    return code


def _stop(procs: dict[str, subprocess.Popen], grace_s: float) -> int:
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace_s
    for name, p in procs.items():
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("node %s ignored SIGINT for %.0f s: terminating", name, grace_s)
            p.terminate()
            try:
                p.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    bad = [p.returncode for p in procs.values() if p.returncode not in (0, -signal.SIGINT)]
    return bad[0] if bad else 0


def up(
    profile: str = "sim",
    *,
    mode: str = "processes",
    backend: str = "",
    params_file: str | Path | None = None,
    seconds: float | None = None,
    seed: int | None = None,
    sim: bool | str | None = None,
    overrides: dict[str, dict] | None = None,
    arguments: dict[str, str] | None = None,
) -> int:
    """Bring the stack up (what ``wm up sim`` calls); returns an exit status.

    ``overrides`` maps node names to extra parameters (applied after the parameters file);
    ``arguments`` are the profile's launch arguments (``wm_bringup.stack.arguments``)."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} must be one of {MODES}")
    overrides = {k: dict(v) for k, v in (overrides or {}).items()}
    if seed is not None:
        simulator = "pybullet" if str(sim).strip().lower() == "pybullet" else "mujoco"
        overrides.setdefault(SIM_NODES[simulator], {})["seed"] = seed
    stack = describe(
        profile,
        sim=sim,
        backend=backend,
        params_file=params_file,
        overrides=overrides,
        arguments=arguments,
    )
    if stack.simulator == "gazebo":
        raise ValueError(GAZEBO_NEEDS_ROS2)
    names = ", ".join(n.name for n in stack.running())
    log.info("starting the %s stack (%s) with %s: %s", profile, mode, stack.params_file, names)
    if mode == "processes":
        return run_processes(stack, seconds)
    from rclpy.executors import ExternalShutdownException

    from wm_bringup.nodekit import StartupError, freeze_heap

    running = InProcessStack(stack, handle_signals=True)
    try:
        running.start()
        freeze_heap()  # this process is the stack: keep start-up objects out of collections
        running.spin(seconds)
    except StartupError as exc:
        log.error("the stack did not start: %s", exc)
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        running.shutdown()
    return 0
