"""TensorRT engines from the ONNX export: build, cache, refuse what does not belong here.

``ensure_engine(onnx, engine_file_path, force_engine_update=...)`` follows the Isaac ROS
convention: an engine is cached at ``engine_file_path`` with a build record beside it
(``<engine>.json``: the ONNX file's sha256, the TensorRT version, the GPU's name, the precision
and the batch profile).

- Same record: the cached engine is used.
- Stale (the ONNX file, precision or batch profile changed): rebuilt, and logged.
- Built by another TensorRT version or on another GPU (or with no record): refused with
  :class:`EngineMismatchError`, which says which and how to rebuild
  (``force_engine_update``). TensorRT itself would reject such an engine less clearly, or
  run it slower.

FP16: TensorRT 10 (JetPack 6) takes the FP32 graph and ``BuilderFlag.FP16``; TensorRT 11 has
only strongly typed networks, so the export's FP16 graph (``*.fp16.onnx``, FP16 inside with
FP32 inputs and outputs) is parsed instead. The optimisation profile spans the batch range
``(min, opt, max)`` on every input's first dimension.

Everything here needs the ``tensorrt`` package and a CUDA GPU; on machines without them
:func:`require_tensorrt` raises :class:`TensorRTUnavailableError` naming what is missing.
"""

from __future__ import annotations

import importlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from wm_core.deploy.onnx_export import sha256

log = logging.getLogger(__name__)

PRECISIONS = ("fp16", "fp32")


class TensorRTUnavailableError(RuntimeError):
    """TensorRT or a CUDA GPU is missing (the message names which)."""


class EngineMismatchError(RuntimeError):
    """A cached engine was built by another TensorRT version or on another GPU."""


@dataclass(frozen=True)
class EngineKey:
    """What an engine was built from and for; two engines with equal keys are interchangeable."""

    onnx_sha256: str
    tensorrt: str  # TensorRT version that built it
    gpu: str  # CUDA device name it was built on
    precision: str  # fp16 | fp32
    batch: tuple[int, int, int]  # optimisation profile: min, opt, max of the batch dimension

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision={self.precision!r} must be one of {PRECISIONS}")
        lo, opt, hi = self.batch
        if not 1 <= lo <= opt <= hi:
            raise ValueError(f"batch={self.batch} must satisfy 1 <= min <= opt <= max")


def require_tensorrt() -> tuple[Any, str]:
    """(the tensorrt module, the CUDA device name), or TensorRTUnavailableError."""
    try:
        trt = importlib.import_module("tensorrt")
    except ImportError as exc:
        raise TensorRTUnavailableError(
            "TensorRT is not installed (pip install tensorrt on a CUDA machine; JetPack on a "
            "Jetson)"
        ) from exc
    import torch

    if not torch.cuda.is_available():
        raise TensorRTUnavailableError("TensorRT needs a CUDA GPU, and torch sees none")
    return trt, torch.cuda.get_device_name(0)


def record_path(engine: Path) -> Path:
    return Path(str(engine) + ".json")


def read_record(engine: Path) -> EngineKey | None:
    path = record_path(engine)
    try:
        raw = json.loads(path.read_text())
        return EngineKey(**{**raw, "batch": tuple(raw["batch"])})
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, TypeError, KeyError, ValueError) as exc:
        raise EngineMismatchError(f"{path}: unreadable engine build record ({exc})") from exc


def check_cached(engine: Path, want: EngineKey, force: bool) -> str:
    """What to do with the engine at ``engine``: "use", "build" (none, stale or forced), or
    raise EngineMismatchError (another TensorRT or GPU, or no build record)."""
    if force:
        return "build"
    if not engine.is_file():
        return "build"
    have = read_record(engine)
    if have is None:
        raise EngineMismatchError(
            f"{engine} has no build record ({record_path(engine).name}); it may come from another "
            "TensorRT version or GPU: rebuild it with force_engine_update:=true"
        )
    if have.tensorrt != want.tensorrt or have.gpu != want.gpu:
        raise EngineMismatchError(
            f"{engine} was built with TensorRT {have.tensorrt} on {have.gpu!r}, but this is "
            f"TensorRT {want.tensorrt} on {want.gpu!r}: engines do not carry across versions or "
            "GPUs; rebuild it with force_engine_update:=true"
        )
    if have != want:
        changed = [k for k in asdict(want) if asdict(want)[k] != asdict(have)[k]]
        log.info("engine %s is stale (%s changed): rebuilding", engine, ", ".join(changed))
        return "build"
    return "use"


def _fp16_graph(onnx_file: Path) -> Path:
    return onnx_file.with_name(onnx_file.stem + ".fp16.onnx")


def build_engine(trt: Any, onnx_file: Path, precision: str, batch: tuple[int, int, int]) -> bytes:
    """A serialized engine for ``onnx_file`` with one optimisation profile over ``batch``."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch (the only kind in TensorRT >= 10)
    parser = trt.OnnxParser(network, logger)
    config = builder.create_builder_config()
    source = onnx_file
    if precision == "fp16":
        if hasattr(trt.BuilderFlag, "FP16"):  # TensorRT <= 10: weak typing
            config.set_flag(trt.BuilderFlag.FP16)
        else:  # TensorRT 11: strongly typed; the FP16 graph says which tensors are half
            source = _fp16_graph(onnx_file)
            if not source.is_file():
                raise TensorRTUnavailableError(
                    f"{source} does not exist (wm export --format onnx writes it)"
                )
    if not parser.parse(source.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"{source}: TensorRT's ONNX parser failed: {errors}")
    profile = builder.create_optimization_profile()
    lo, opt, hi = batch
    for i in range(network.num_inputs):
        inp = network.get_input(i)
        rest = tuple(inp.shape)[1:]
        profile.set_shape(inp.name, (lo, *rest), (opt, *rest), (hi, *rest))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"{source}: TensorRT could not build an engine (see its log)")
    return bytes(serialized)


def ensure_engine(
    onnx_file: Path,
    engine_file: Path,
    precision: str = "fp16",
    batch: tuple[int, int, int] = (1, 1, 1),
    force_engine_update: bool = False,
) -> Path:
    """The engine for ``onnx_file`` at ``engine_file``, built if missing, stale or forced."""
    trt, gpu = require_tensorrt()
    want = EngineKey(sha256(onnx_file), str(trt.__version__), gpu, precision, tuple(batch))
    if check_cached(engine_file, want, force_engine_update) == "use":
        log.info("using cached engine %s", engine_file)
        return engine_file
    log.info(
        "building TensorRT engine %s from %s (%s, batch %s)",
        engine_file,
        onnx_file,
        precision,
        batch,
    )
    engine_file.parent.mkdir(parents=True, exist_ok=True)
    engine_file.write_bytes(build_engine(trt, onnx_file, precision, tuple(batch)))
    record_path(engine_file).write_text(json.dumps(asdict(want), indent=2) + "\n")
    return engine_file


class TrtRunner:
    """One deserialized engine with torch CUDA buffers; ``run(*inputs)`` on CPU or CUDA torch
    tensors (batch within the profile) returns the outputs as CUDA float32 tensors."""

    def __init__(self, engine_file: Path):
        trt, _ = require_tensorrt()
        import torch

        self.trt, self.torch = trt, torch
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(Path(engine_file).read_bytes())
        if self.engine is None:
            raise EngineMismatchError(f"{engine_file}: TensorRT could not deserialize the engine")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_in = [self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names]
        self.inputs = [n for n, i in zip(names, is_in, strict=True) if i]
        self.outputs = [n for n, i in zip(names, is_in, strict=True) if not i]
        self.stream = torch.cuda.Stream()

    def run(self, *inputs):
        torch = self.torch
        outs = []
        with torch.cuda.stream(self.stream):
            for name, x in zip(self.inputs, inputs, strict=True):
                x = x.to("cuda", torch.float32, non_blocking=True).contiguous()
                self.context.set_input_shape(name, tuple(x.shape))
                self.context.set_tensor_address(name, x.data_ptr())
                outs.append(x)  # keep alive until the stream is done
            results = []
            for name in self.outputs:
                y = torch.empty(tuple(self.context.get_tensor_shape(name)), device="cuda")
                self.context.set_tensor_address(name, y.data_ptr())
                results.append(y)
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT execution failed")
        self.stream.synchronize()
        return results
