"""Encoder inference backends: image batch [1, 3, S, S] float32 in [0, 1] -> latent [1, N, D].

- ``torch``: the shipped checkpoint (``<model_dir>/model.pt``), ``WorldModel.encode`` on CPU or
  CUDA.
- ``onnxruntime``: an ONNX export of ``WorldModel.encode`` (``<model_dir>/encoder.onnx`` unless
  ``onnx_file`` is set; input ``[1, 3, S, S]`` in [0, 1], output ``[1, N, D]``), with the CUDA
  or TensorRT execution providers when present.
- ``tensorrt``: a serialized TensorRT engine built from that ONNX file
  (``<model_dir>/encoder.engine``), run with torch CUDA buffers (a Jetson or a GPU machine).

A backend whose package is not installed raises :class:`BackendUnavailableError` at configure time,
with the package to install; nothing falls back silently.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnxruntime", "tensorrt")


class BackendUnavailableError(RuntimeError):
    """The selected backend cannot run here (package missing, no GPU, no model file)."""


class EncoderBackend(Protocol):
    name: str
    image_size: int

    def encode(self, images: np.ndarray) -> np.ndarray:
        """images [1, 3, S, S] float32 in [0, 1] -> latent [1, N, D] float32."""
        ...

    def close(self) -> None: ...


def _require(module: str, backend: str, hint: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"backend {backend!r} needs the {module!r} package, which is not installed "
            f"({hint}); use backend 'torch' here"
        ) from exc


def _existing(path: Path, what: str) -> Path:
    if not path.is_file():
        raise BackendUnavailableError(f"{what} {path} does not exist")
    return path


class TorchBackend:
    name = "torch"

    def __init__(self, model_dir: Path, device: str = "cpu", threads: int = 1):
        import torch

        from wm_core.models.checkpoint import CheckpointError, load_checkpoint

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailableError(f"device {device!r} asked for, but CUDA is not available")
        torch.set_num_threads(threads)
        try:
            self.model = load_checkpoint(_existing(model_dir / "model.pt", "checkpoint"))
        except CheckpointError as exc:
            raise BackendUnavailableError(str(exc)) from exc
        self.model = self.model.to(device)
        self.device, self.torch = device, torch
        self.image_size = self.model.cfg.image_size

    def encode(self, images: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            x = self.torch.from_numpy(images).to(self.device)  # [1, 3, S, S]
            return self.model.encode(x).float().cpu().numpy()  # [1, N, D]

    def close(self) -> None:
        self.model = None


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, onnx_file: Path, threads: int = 1):
        ort = _require("onnxruntime", self.name, "pip install onnxruntime or onnxruntime-gpu")
        _existing(onnx_file, "ONNX encoder")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        wanted = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
        providers = [p for p in wanted if p in ort.get_available_providers()]
        self.session = ort.InferenceSession(str(onnx_file), opts, providers=providers)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        size = inp.shape[-1]
        if not isinstance(size, int):
            raise BackendUnavailableError(f"{onnx_file}: input side {size!r} must be a fixed size")
        self.image_size = size
        log.info("onnxruntime encoder %s on %s", onnx_file, self.session.get_providers())

    def encode(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: images})[0], np.float32)

    def close(self) -> None:
        self.session = None


class TensorRTBackend:
    """A serialized engine with one input and one output tensor (TensorRT >= 8.5 tensor API)."""

    name = "tensorrt"

    def __init__(self, engine_file: Path):
        trt = _require("tensorrt", self.name, "install TensorRT (JetPack on a Jetson)")
        import torch

        if not torch.cuda.is_available():
            raise BackendUnavailableError("backend 'tensorrt' needs a CUDA device")
        _existing(engine_file, "TensorRT engine")
        self.torch = torch
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(engine_file.read_bytes())
        if self.engine is None:
            raise BackendUnavailableError(
                f"{engine_file}: TensorRT could not deserialize the engine"
            )
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        mode = trt.TensorIOMode.INPUT
        self.inp = next(n for n in names if self.engine.get_tensor_mode(n) == mode)
        self.out = next(n for n in names if self.engine.get_tensor_mode(n) != mode)
        in_shape = tuple(self.engine.get_tensor_shape(self.inp))  # (1, 3, S, S)
        out_shape = tuple(self.engine.get_tensor_shape(self.out))  # (1, N, D)
        self.image_size = int(in_shape[-1])
        self.in_buf = torch.empty(in_shape, dtype=torch.float32, device="cuda")
        self.out_buf = torch.empty(out_shape, dtype=torch.float32, device="cuda")
        self.context.set_tensor_address(self.inp, self.in_buf.data_ptr())
        self.context.set_tensor_address(self.out, self.out_buf.data_ptr())
        self.stream = torch.cuda.Stream()

    def encode(self, images: np.ndarray) -> np.ndarray:
        self.in_buf.copy_(self.torch.from_numpy(images))
        with self.torch.cuda.stream(self.stream):
            self.context.execute_async_v3(self.stream.cuda_stream)
        self.stream.synchronize()
        return self.out_buf.cpu().numpy()

    def close(self) -> None:
        self.context = self.engine = self.runtime = None


def make_backend(
    name: str,
    model_dir: Path,
    onnx_file: str = "",
    engine_file: str = "",
    device: str = "cpu",
    threads: int = 1,
) -> EncoderBackend:
    """The backend ``name``; raises BackendUnavailableError with the reason if it cannot run."""
    if name == "torch":
        return TorchBackend(model_dir, device, threads)
    if name == "onnxruntime":
        onnx = Path(onnx_file) if onnx_file else model_dir / "encoder.onnx"
        return OnnxRuntimeBackend(onnx, threads)
    if name == "tensorrt":
        return TensorRTBackend(Path(engine_file) if engine_file else model_dir / "encoder.engine")
    raise BackendUnavailableError(f"backend={name!r} must be one of {BACKENDS}")
