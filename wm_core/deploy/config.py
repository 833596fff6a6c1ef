"""The inference-backend choice (:class:`BackendConfig`), without importing torch: the nodes
generate their backend parameters from it (``wm_bringup.nodekit.BACKEND_PARAMS``)."""

from __future__ import annotations

from dataclasses import dataclass

from wm_core.config import ConfigError

BACKENDS = ("torch", "onnxruntime", "tensorrt")
CHOICES = (*BACKENDS, "auto")
DEVICES = ("cpu", "cuda")
PRECISIONS = ("auto", "fp32", "fp16")


@dataclass(frozen=True)
class BackendConfig:
    """Which inference backend runs the world model, and where."""

    backend: str = "torch"
    """torch, onnxruntime, tensorrt, or auto (the first of tensorrt, onnxruntime, torch that
    can run here, logged)."""
    device: str = "cpu"
    """cpu or cuda (torch and onnxruntime; tensorrt is always cuda)."""
    precision: str = "auto"
    """auto, fp32 or fp16. auto: FP16 for tensorrt, FP32 for the others. fp16 casts the torch
    model on cuda and builds FP16 TensorRT engines; onnxruntime always runs the FP32 export."""
    onnx_dir: str = ""
    """The ONNX export (manifest.json + graphs); empty: ``<model_dir>/onnx``."""
    engine_dir: str = ""
    """Where TensorRT engines are cached (Isaac ROS's engine_file_path, one per graph);
    empty: ``$WM_ENGINE_CACHE`` (the Docker images' volume), else ``<onnx_dir>/engines``."""
    force_engine_update: bool = False
    """Rebuild the TensorRT engines even if the cached ones match."""
    max_batch: int = 4096
    """Largest candidate batch a TensorRT engine's optimisation profile accepts."""
    threads: int = 1
    """CPU threads for torch and onnxruntime (the planner owns its process's threads)."""

    def __post_init__(self):
        if self.backend not in CHOICES:
            raise ConfigError(f"backend={self.backend!r} must be one of {CHOICES}")
        if self.device not in DEVICES:
            raise ConfigError(f"device={self.device!r} must be one of {DEVICES}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision={self.precision!r} must be one of {PRECISIONS}")
        if (
            self.precision == "fp16"
            and self.backend in ("torch", "onnxruntime")
            and (self.backend == "onnxruntime" or self.device == "cpu")
        ):
            raise ConfigError(
                f"precision='fp16' needs backend 'tensorrt', or 'torch' with device='cuda' "
                f"(got backend={self.backend!r}, device={self.device!r})"
            )
        if not 1 <= self.max_batch <= 8192:
            raise ConfigError(f"max_batch={self.max_batch} must be in [1, 8192]")
        if not 1 <= self.threads <= 64:
            raise ConfigError(f"threads={self.threads} must be in [1, 64]")
