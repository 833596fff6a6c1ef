"""What every wm node shares: typed parameters, QoS, diagnostics, lifecycle start and main().

A node declares its parameters as a tuple of :class:`Param` (each with a
``ParameterDescriptor``, numeric ones with a range), and maps their values *once* onto wm_core
config dataclasses in :meth:`WmNode.build_config`. That mapping is also the validation: the
node refuses to start when it raises, and a ``set_parameters`` call that would make it raise is
rejected with the same message. Model weights and other heavy resources are loaded in
``on_configure`` and freed in ``on_cleanup`` (``rclpy.lifecycle``); with ``autostart: true``
(the default) the node configures and activates itself, so a plain launch ``Node`` or the runner
brings it up.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import gc
import math
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy._rclpy_pybind11 import RCLError
from rclpy.exceptions import (
    InvalidParameterTypeException,
    InvalidParameterValueException,
    ParameterException,
)
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from wm_bringup.msgs import SUCTION_JOINT, arm_joint_names
from wm_bringup.stack import EXIT_REFUSED
from wm_core.cell import Workcell, cell_or_default
from wm_core.config import ConfigError, field_docs
from wm_core.deploy.config import CHOICES, DEVICES, PRECISIONS, BackendConfig

ParamValue = bool | int | float | str | list[float] | list[str]

SENSOR_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)
"""Images, camera info and the latent: only the newest sample matters."""
RELIABLE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
"""Commands, joint states, e-stop, clock, diagnostics."""

STATE_IDS = {"unconfigured": 1, "inactive": 2, "active": 3, "finalized": 4}


class StartupError(RuntimeError):
    """The node refuses to start (bad parameter, missing model, missing backend package)."""


@dataclass(frozen=True)
class Param:
    """One declared parameter. The type is the default's; numbers may carry a range."""

    name: str
    default: ParamValue
    description: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = False

    @classmethod
    def of(
        cls, config: type, field: str, name: str | None = None, default: ParamValue | None = None
    ) -> Param:
        """The parameter of a config dataclass's field: its default, its range (a
        :func:`wm_core.config.bounded` field) and the first sentence of its docstring. A
        range is written once, in the dataclass; the node never restates it."""
        spec = {f.name: f for f in dataclasses.fields(config)}[field]
        lo, hi = spec.metadata.get("range", (None, None))
        doc = field_docs(config).get(field, field)
        first = doc.split(". ")[0].rstrip(".") + "."
        value = spec.default if default is None else default
        return cls(name or field, value, first, lo, hi)

    def descriptor(self) -> ParameterDescriptor:
        d = ParameterDescriptor(
            name=self.name, description=self.description, read_only=self.read_only
        )
        if self.choices:
            d.additional_constraints = f"one of {list(self.choices)}"
        if self.lo is not None and self.hi is not None:
            if isinstance(self.default, bool):
                raise TypeError(f"{self.name}: a bool parameter has no range")
            if isinstance(self.default, int):
                d.integer_range = [IntegerRange(from_value=int(self.lo), to_value=int(self.hi))]
            elif isinstance(self.default, float):
                d.floating_point_range = [
                    FloatingPointRange(from_value=float(self.lo), to_value=float(self.hi))
                ]
        return d

    def check(self, value: Any) -> None:
        """Choices and finiteness (ranges are enforced by the descriptor)."""
        if self.choices and value not in self.choices:
            raise ConfigError(f"{self.name}={value!r} must be one of {list(self.choices)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{self.name}={value!r} must be finite")


CELL_FILE = Param(
    "cell_file",
    "",
    "Work-cell file (YAML: table, bin, workspace, keep-out and obstacle boxes, arm base, "
    "camera; wm_core/cell.py). Empty: the MuJoCo world's configs/cells/sim.yaml.",
)
"""The one parameter through which every node that needs cell geometry gets it (set once, under
``/**`` in stack.yaml or by the launch argument ``cell_file``)."""


def cell_of(values: dict[str, Any]) -> Workcell:
    """The cell named by the ``cell_file`` parameter (ConfigError, one line, if it is bad)."""
    return cell_or_default(values["cell_file"])


_BACKEND_CHOICES = {"backend": CHOICES, "device": DEVICES, "precision": PRECISIONS}
BACKEND_PARAMS = tuple(
    dataclasses.replace(Param.of(BackendConfig, f), choices=_BACKEND_CHOICES.get(f, ()))
    for f in ("backend", "device", "precision", "onnx_dir", "engine_dir", "force_engine_update")
)
"""The inference-backend parameters of the perception and planner nodes, generated from
:class:`wm_core.deploy.config.BackendConfig` (each default and description is written once)."""


def backend_config_of(values: dict[str, Any], threads: int) -> BackendConfig:
    """The :class:`BackendConfig` the backend parameters select (ConfigError, one line)."""
    names = ("backend", "device", "precision", "onnx_dir", "engine_dir", "force_engine_update")
    return BackendConfig(**{n: values[n] for n in names}, threads=threads)


WORLD_PARAMS = (
    Param(
        "cmd_timeout",
        0.5,
        "As the JTC's cmd_timeout: stop (hold where the arm is) when no command arrives "
        "within this long after the last one's end (s); 0: off.",
        0.0,
        60.0,
    ),
    Param("auto_reset", False, "Start the next episode (seed + 1) when one ends."),
    Param("metrics_period_s", 1.0, "Period (simulated s) of /wm/sim/episode.", 0.1, 3600.0),
    Param("clock_start_s", 1.0, "Simulated time of the first step (s).", 0.0, 1e6),
    Param("camera_frame", "scene_camera_optical", "frame_id of the camera messages."),
    Param("base_frame", "world", "frame_id of the joint states."),
)
"""The parameters both simulated worlds (``wm_sim``, ``wm_pybullet``) share: their arm's
controller and the episode interface the episode driver uses."""


JOINT_NAMES = Param(
    "joint_names",
    list(arm_joint_names()),
    "The arm's six joint names in the URDF's joint order (shoulder pan ... wrist 3), as its "
    "driver names them in /joint_states and expects them in trajectories (default: the URDF's).",
    read_only=True,
)
"""The arm's joint names (``joint_names:=`` of real.launch.py), read by the planner and the
safety node: joint i of the URDF is called ``joint_names[i]`` on the wire."""


def joint_names_of(values: dict[str, Any]) -> tuple[str, ...]:
    """The ``joint_names`` parameter, checked: six distinct names, none ``suction_cup``."""
    names = tuple(str(n) for n in values["joint_names"])
    if len(names) != 6 or not all(names) or len(set(names)) != 6 or SUCTION_JOINT in names:
        raise ConfigError(
            f"joint_names={list(names)} must be the arm's 6 distinct joint names "
            f"(URDF order; not {SUCTION_JOINT!r})"
        )
    return names


def boxes_from_flat(name: str, flat: Sequence[float]) -> tuple:
    """``[xmin, ymin, zmin, xmax, ymax, zmax] * K`` -> K boxes ((lo3), (hi3))."""
    v = [float(x) for x in flat]
    if len(v) % 6:
        raise ConfigError(f"{name} has {len(v)} numbers; it must be 6 per box (lo xyz, hi xyz)")
    return tuple((tuple(v[i : i + 3]), tuple(v[i + 3 : i + 6])) for i in range(0, len(v), 6))


def guarded_transition(fn: Callable) -> Callable:
    """A lifecycle callback that logs (rather than rclpy swallowing) what goes wrong.

    Expected failures (bad config, missing model, missing package) log one line and fail the
    transition; anything else logs its traceback and reports ERROR."""

    @functools.wraps(fn)
    def wrapper(self: WmNode, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            return fn(self, state)
        except (ConfigError, StartupError, OSError, ValueError) as exc:
            self.get_logger().error(f"{fn.__name__} failed: {exc}")
            self.startup_error = str(exc)
            return TransitionCallbackReturn.FAILURE
        except Exception as exc:  # the boundary of a callback rclpy would swallow
            self.get_logger().error(f"{fn.__name__} crashed: {exc!r}")
            self.get_logger().error(traceback.format_exc())
            self.startup_error = repr(exc)
            return TransitionCallbackReturn.ERROR

    return wrapper


class WmNode(LifecycleNode):
    """Base of the wm nodes: parameters + validation + diagnostics + autostart."""

    PARAMS: tuple[Param, ...] = ()
    COMMON = (
        Param("autostart", True, "Configure and activate at start (no lifecycle manager)."),
        Param("diagnostics_period_s", 1.0, "Period of /diagnostics reports (s).", 0.05, 60.0),
    )

    def __init__(self, node_name: str, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.startup_error: str | None = None
        self._specs = {p.name: p for p in (*self.COMMON, *self.PARAMS)}
        for p in self._specs.values():
            try:
                self.declare_parameter(p.name, p.default, p.descriptor())
            except (InvalidParameterValueException, InvalidParameterTypeException) as exc:
                raise self._refuse(f"parameter {p.name}: {exc}") from None
            except ParameterException as exc:
                raise self._refuse(f"parameter {p.name}: {exc}") from None
        try:
            self.config = self.build_config(self.values())
        except ConfigError as exc:
            raise self._refuse(str(exc)) from None
        self.add_on_set_parameters_callback(self._validate_set)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", RELIABLE_QOS)
        self._diag_timer = self.create_timer(
            self.values()["diagnostics_period_s"], self._publish_diagnostics
        )

    # ------------------------------------------------------------------ parameters
    def values(self, changes: Iterable[Parameter] = ()) -> dict[str, Any]:
        """Current parameter values, with ``changes`` applied on top."""
        out = {n: self.get_parameter(n).value for n in self._specs}
        for p in changes:
            if p.name in out:
                out[p.name] = p.value
        for name, value in out.items():
            if isinstance(value, tuple | list) or type(value).__name__ == "array":
                out[name] = list(value)
        return out

    def build_config(self, values: dict[str, Any]) -> Any:
        """Map parameter values onto the node's wm_core config(s); raise ConfigError if bad."""
        for name, value in values.items():
            self._specs[name].check(value)
        return None

    def _validate_set(self, params: list[Parameter]) -> SetParametersResult:
        try:
            self.build_config(self.values(params))
        except ConfigError as exc:
            self.get_logger().warning(f"rejected parameter change: {exc}")
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _refuse(self, why: str) -> StartupError:
        self.get_logger().error(f"refusing to start: {why}")
        self.startup_error = why
        return StartupError(f"{self.get_name()}: {why}")

    # ------------------------------------------------------------------ lifecycle
    @property
    def state_label(self) -> str:
        return self._state_machine.current_state[1]

    @property
    def active(self) -> bool:
        return self.state_label == "active"

    def start(self) -> None:
        """configure + activate; raise :class:`StartupError` (logged) if either fails."""
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            raise StartupError(f"{self.get_name()}: configure failed: {self.startup_error}")
        if self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            raise StartupError(f"{self.get_name()}: activate failed: {self.startup_error}")

    def autostart(self) -> None:
        if self.values()["autostart"]:
            self.start()

    def release(self) -> None:
        """Free resources without ROS calls (safe after the context has shut down)."""

    def stop(self) -> None:
        """Bring the node down to unconfigured (freeing its resources) if the context allows."""
        if not self.context.ok():
            self.release()
            return
        if self.state_label == "active":
            self.trigger_deactivate()
        if self.state_label == "inactive":
            self.trigger_cleanup()
        self.release()

    def publish(self, publisher: Any, msg: Any) -> None:
        """Publish, tolerating the one failure that is a shutdown: a signal invalidated the
        context while this callback ran."""
        try:
            publisher.publish(msg)
        except RCLError:
            if self.context.ok():
                raise

    # ------------------------------------------------------------------ diagnostics
    def diagnostics(self) -> tuple[int, str, dict[str, Any]]:
        """(level, message, key values) for /diagnostics; nodes extend this."""
        return DiagnosticStatus.OK, self.state_label, {}

    def _publish_diagnostics(self) -> None:
        level, message, kv = self.diagnostics()
        if not self.active and level == DiagnosticStatus.OK:
            level = DiagnosticStatus.WARN
        status = DiagnosticStatus(
            level=bytes([level]) if isinstance(level, int) else level,
            name=self.get_fully_qualified_name(),
            message=message,
            hardware_id="wm",
            values=[KeyValue(key=k, value=str(v)) for k, v in kv.items()],
        )
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.publish(self._diag_pub, msg)


def freeze_heap() -> None:
    """Move every object alive now (torch, rclpy, the model) out of the garbage collector's
    reach, so that a later full collection walks only what the node allocates while it runs.

    Without it a full collection walks about 200,000 start-up objects and stops the process
    for 85-100 ms (measured in each node process on the 2-core VM), two periods of the safety
    watchdog; after it, under 1 ms. Call it once a node (or the in-process stack) has started."""
    gc.collect()
    gc.freeze()


M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter number for the mmap threshold (malloc.h)."""
MMAP_THRESHOLD_BYTES = 128 * 1024
"""glibc's default threshold, kept fixed: blocks this large or larger are mmap'd."""


def fix_mmap_threshold(nbytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Keep glibc's mmap threshold fixed at ``nbytes`` for this process; True if set.

    By default glibc raises the threshold to the size of every mmap'd block that is freed, so
    after the first large free, large blocks come from the heap instead, where freeing them
    leaves holes that the process keeps. A world node rebuilds its MuJoCo model, data and
    renderers at every reset: 30 resets of the MuJoCo env (1 object, 64 px) in one process took
    its RSS from 195 to 242 MB, a ratchet that made the soak's memory check fail now and then.
    With the threshold fixed (as setting it by ``mallopt`` does) the same 30 resets stayed at
    194-198 MB. Only for processes that rebuild large native buffers: a torch node would map
    and unmap its larger tensors at every step. False where there is no glibc ``mallopt``."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(ctypes.c_int(M_MMAP_THRESHOLD), ctypes.c_int(int(nbytes))))


def run_plain_node(make_node: Callable[[], Any], args: list[str] | None, freeze: bool) -> None:
    """The ``main()`` of a helper process that is a plain rclpy node, not a lifecycle
    :class:`WmNode` (the chaos relay, the Gazebo suction relay): spin until Ctrl-C or an
    outside shutdown, then destroy it. ``freeze``: :func:`freeze_heap` after construction."""
    rclpy.init(args=sys.argv if args is None else args)
    node = make_node()
    if freeze:
        freeze_heap()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def run_node(node_cls: type[WmNode], args: list[str] | None = None) -> int:
    """The ``main()`` of a node process: start, spin, and shut down quietly on Ctrl-C/SIGTERM.

    The first SIGINT or SIGTERM only sets a flag that the spin loop checks between callbacks;
    the node then leaves its lifecycle states (deactivate, cleanup) with the context intact and
    shuts down. (rclpy's own handlers shut the context down from another thread while this one
    may be inside a callback or a take: the node's stop() raced it, "Failed to complete
    transition 2" at nearly every ``ros2 launch`` Ctrl-C, and now and then the interrupt
    surfaced as a RuntimeError traceback from ``take_message``.) A second signal kills the
    process the default way.

    Returns the exit status: ``EXIT_REFUSED`` (3) when the node refuses to start (the runner
    and launch do not respawn it), else 0."""
    args = sys.argv if args is None else args
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        if stopping.is_set():
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    node: WmNode | None = None
    code = 0
    try:
        node = node_cls()
        node.autostart()
        freeze_heap()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while not stopping.is_set():
            executor.spin_once(timeout_sec=0.1)
    except StartupError:
        code = EXIT_REFUSED  # the node already logged why
    except (KeyboardInterrupt, ExternalShutdownException):
        rclpy.try_shutdown()  # shut down from outside: stop() takes its no-ROS path
    except RCLError:
        # The context was shut down from outside while a callback was publishing.
        if node is None or node.context.ok():
            raise
    finally:
        if node is not None:
            node.stop()
            node.destroy_node()
        rclpy.try_shutdown()
    return code
