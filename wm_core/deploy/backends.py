"""One inference-backend interface for the world model: torch, onnxruntime, TensorRT.

:func:`make_backend` returns an object with the world model's verbs, on CPU torch tensors:

- ``cfg`` (the :class:`~wm_core.models.ModelConfig`);
- ``encode(images [B, 3, S, S] in [0, 1]) -> z [B, N, D]``;
- ``predict(z [B, N, D], p [B, 10], a [B, 4]) -> (z' [B, N, D], p' [B, 10])``;
- ``rollout(z0, p0, actions [B, H, 4]) -> (z [B, H, N, D], p [B, H, 10])``;
- ``rollout_proprio(z0, p0, actions) -> p [B, H, 10]`` (the planner's hot path);
- ``parameters()``; ``differentiable`` (only torch backs the gradient planner).

Backends:

- ``torch``: the checkpoint itself on the CPU (the :class:`WorldModel`), or on CUDA in FP32
  or FP16;
- ``onnxruntime``: the ONNX export (``wm export --format onnx``) on the CPU or CUDA provider;
- ``tensorrt``: engines built from the export (``ensure_engine``: cached by ONNX hash,
  TensorRT version and GPU; ``force_engine_update`` rebuilds);
- ``auto``: tensorrt, then onnxruntime, then torch, the first that can run here; it logs
  which one it chose and why the others could not.

A named backend that cannot run raises :class:`BackendUnavailableError` naming what is missing;
nothing falls back silently.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from wm_core.config import ConfigError, from_mapping
from wm_core.deploy.config import BackendConfig
from wm_core.deploy.onnx_export import GRAPHS, ExportError, load_manifest, sha256
from wm_core.models import ModelConfig, WorldModel
from wm_core.models.checkpoint import CheckpointError, load_checkpoint
from wm_core.models.world_model import rollout_proprio_steps, rollout_steps

log = logging.getLogger(__name__)


ENGINE_CACHE_ENV = "WM_ENGINE_CACHE"
"""Where TensorRT engines go when ``engine_dir`` is empty (the Docker images set it to their
engine-cache volume); unset: ``<onnx_dir>/engines``."""
AUTO_ORDER = ("tensorrt", "onnxruntime", "torch")
"""What ``auto`` tries, fastest first where each can run."""


class BackendUnavailableError(RuntimeError):
    """The selected backend cannot run here (package, GPU, export or engine missing)."""


class BackendModel:
    """The world model's verbs over an exported copy (subclasses give encode, predict and
    step_proprio on CPU float32 torch tensors); rollouts step exactly as WorldModel's do."""

    name = "?"
    differentiable = False
    cfg: ModelConfig

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def predict(self, z: torch.Tensor, p: torch.Tensor, a: torch.Tensor):
        raise NotImplementedError

    def step_proprio(self, zbar: torch.Tensor, p: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def rollout(self, z0: torch.Tensor, p0: torch.Tensor, actions: torch.Tensor):
        return rollout_steps(self.predict, z0, p0, actions)

    def rollout_proprio(self, z0: torch.Tensor, p0: torch.Tensor, actions: torch.Tensor):
        return rollout_proprio_steps(self.step_proprio, z0, p0, actions)

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        return iter(())

    def eval(self) -> BackendModel:
        return self

    def close(self) -> None:
        """Free the backend's resources (sessions, engines, GPU memory)."""


class TorchCudaModel(BackendModel):
    """The checkpoint on a CUDA device, FP32 or FP16; tensors cross to the GPU and back."""

    name = "torch"

    def __init__(self, model: WorldModel, precision: str = "fp32"):
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        self.model = model.to("cuda", self.dtype).eval()
        self.cfg = model.cfg

    def _run(self, fn, *xs: torch.Tensor):
        with torch.no_grad():
            out = fn(*(x.to("cuda", self.dtype) for x in xs))
        if isinstance(out, tuple):
            return tuple(o.float().cpu() for o in out)
        return out.float().cpu()

    def encode(self, images):
        return self._run(self.model.encode, images)

    def encode_tap(self, images, stage: int):
        return self._run(lambda x: self.model.encode_tap(x, stage), images)

    def predict(self, z, p, a):
        return self._run(self.model.predict, z, p, a)

    def step_proprio(self, zbar, p, a):
        return self._run(self.model.predictor.step_proprio, zbar, p, a)

    def close(self) -> None:
        self.model = None
        torch.cuda.empty_cache()


class OnnxRuntimeModel(BackendModel):
    """The ONNX export through onnxruntime (CPU provider, or CUDA when device is cuda)."""

    name = "onnxruntime"

    def __init__(
        self, onnx_dir: Path, device: str = "cpu", threads: int = 1, checkpoint: Path | None = None
    ):
        ort = _require(
            "onnxruntime", "onnxruntime", "pip install onnxruntime (onnxruntime-gpu for CUDA)"
        )
        manifest = _manifest(onnx_dir, checkpoint)
        provider = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"
        if provider not in ort.get_available_providers():
            raise BackendUnavailableError(
                f"onnxruntime has no {provider} here (available: {ort.get_available_providers()}); "
                "install onnxruntime-gpu for device cuda"
            )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        files = {g: str(Path(onnx_dir) / manifest["graphs"][g]["file"]) for g in GRAPHS}
        self.sessions = {
            g: ort.InferenceSession(f, opts, providers=[provider]) for g, f in files.items()
        }
        self.cfg = _model_config(manifest, onnx_dir)
        log.info("onnxruntime world model from %s on %s", onnx_dir, provider)

    def _run(self, graph: str, **inputs: torch.Tensor):
        feed = {k: np.ascontiguousarray(v.detach().numpy(), np.float32) for k, v in inputs.items()}
        out = self.sessions[graph].run(None, feed)
        return tuple(torch.from_numpy(o) for o in out)

    def encode(self, images):
        _check_images(self.cfg, images)
        return self._run("encoder", images=images)[0]

    def predict(self, z, p, a):
        return self._run("predictor", z=z, p=p, a=a)

    def step_proprio(self, zbar, p, a):
        return self._run("proprio", zbar=zbar, p=p, a=a)[0]

    def close(self) -> None:
        self.sessions = {}


class TensorRTModel(BackendModel):
    """TensorRT engines built from the ONNX export (``ensure_engine``), run on CUDA."""

    name = "tensorrt"

    def __init__(self, onnx_dir: Path, cfg: BackendConfig, checkpoint: Path | None = None):
        from wm_core.deploy.tensorrt import (
            EngineMismatchError,
            TensorRTUnavailableError,
            TrtRunner,
            ensure_engine,
            require_tensorrt,
        )

        try:
            require_tensorrt()  # first: name the missing package, not a missing export
        except TensorRTUnavailableError as exc:
            raise BackendUnavailableError(str(exc)) from exc
        manifest = _manifest(onnx_dir, checkpoint)
        engines = Path(
            cfg.engine_dir or os.environ.get(ENGINE_CACHE_ENV, "") or onnx_dir / "engines"
        )
        precision = "fp32" if cfg.precision == "fp32" else "fp16"
        self.runners = {}
        try:
            for g in GRAPHS:
                batch = (1, 1, 1) if g == "encoder" else (1, min(128, cfg.max_batch), cfg.max_batch)
                onnx_file = Path(onnx_dir) / manifest["graphs"][g]["file"]
                engine = ensure_engine(
                    onnx_file,
                    engines / f"{g}.{precision}.engine",
                    precision,
                    batch,
                    cfg.force_engine_update,
                )
                self.runners[g] = TrtRunner(engine)
        except TensorRTUnavailableError as exc:
            raise BackendUnavailableError(str(exc)) from exc
        except EngineMismatchError as exc:
            raise BackendUnavailableError(str(exc)) from exc
        self.cfg = _model_config(manifest, onnx_dir)

    def encode(self, images):
        _check_images(self.cfg, images)
        return self.runners["encoder"].run(images)[0].cpu()

    def predict(self, z, p, a):
        z2, p2 = self.runners["predictor"].run(z, p, a)
        return z2.cpu(), p2.cpu()

    def step_proprio(self, zbar, p, a):
        return self.runners["proprio"].run(zbar, p, a)[0].cpu()

    def close(self) -> None:
        self.runners = {}


def _model_config(manifest: dict, onnx_dir: Path) -> ModelConfig:
    try:
        return from_mapping(ModelConfig, manifest.get("model_config"), f"{onnx_dir}: model_config")
    except ConfigError as exc:
        raise BackendUnavailableError(str(exc)) from exc


def _check_images(cfg: ModelConfig, images: torch.Tensor) -> None:
    s = cfg.image_size
    if images.ndim != 4 or tuple(images.shape[1:]) != (3, s, s):
        raise ConfigError(f"images must be [B, 3, {s}, {s}], got {list(images.shape)}")


def _require(module: str, backend: str, hint: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"backend {backend!r} needs the {module!r} package, which is not installed ({hint})"
        ) from exc


def _manifest(onnx_dir: Path, checkpoint: Path | None = None) -> dict:
    """The export's manifest; refused if its files changed or, given ``checkpoint``, if it was
    exported from another checkpoint (a stale export must not run beside a new model)."""
    try:
        manifest = load_manifest(Path(onnx_dir))
    except ExportError as exc:
        raise BackendUnavailableError(str(exc)) from exc
    stale = checkpoint is not None and checkpoint.is_file()
    if stale and sha256(checkpoint) != manifest.get("checkpoint_sha256"):
        raise BackendUnavailableError(
            f"{onnx_dir} was exported from another checkpoint than {checkpoint}: "
            f"re-run wm export --checkpoint {checkpoint} --format onnx --out {onnx_dir}"
        )
    return manifest


def _load_torch(model_dir: Path) -> WorldModel:
    path = Path(model_dir) / "model.pt"
    if not path.is_file():
        raise BackendUnavailableError(f"checkpoint {path} does not exist")
    try:
        return load_checkpoint(path)
    except CheckpointError as exc:
        raise BackendUnavailableError(str(exc)) from exc


def _make(name: str, model_dir: Path, cfg: BackendConfig):
    onnx_dir = Path(cfg.onnx_dir) if cfg.onnx_dir else Path(model_dir) / "onnx"
    if name == "torch":
        if cfg.device == "cuda":
            if not torch.cuda.is_available():
                raise BackendUnavailableError("device 'cuda' asked for, but torch sees no CUDA GPU")
            return TorchCudaModel(_load_torch(model_dir), cfg.precision)
        torch.set_num_threads(cfg.threads)
        return _load_torch(model_dir).eval()
    checkpoint = Path(model_dir) / "model.pt"
    if name == "onnxruntime":
        return OnnxRuntimeModel(onnx_dir, cfg.device, cfg.threads, checkpoint)
    return TensorRTModel(onnx_dir, cfg, checkpoint)


def make_backend(model_dir: Path, cfg: BackendConfig | None = None):
    """The world model of ``model_dir`` on the backend ``cfg`` names (see the module doc)."""
    cfg = cfg or BackendConfig()
    if cfg.backend != "auto":
        return _make(cfg.backend, model_dir, cfg)
    why = []
    for name in AUTO_ORDER:
        try:
            model = _make(name, model_dir, cfg)
        except BackendUnavailableError as exc:
            why.append(f"{name}: {exc}")
            continue
        log.info("backend auto chose %s%s", name, f" ({'; '.join(why)})" if why else "")
        return model
    raise BackendUnavailableError("backend auto: nothing can run here: " + "; ".join(why))


def backend_name(model) -> str:
    """The backend a model from :func:`make_backend` runs on."""
    return getattr(model, "name", "torch")
