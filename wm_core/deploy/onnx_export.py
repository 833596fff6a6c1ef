"""``wm export --format onnx``: the world model as three ONNX graphs, checked and manifested.

Graphs (all float32, every batch dimension dynamic, ``B`` in 1..``MAX_BATCH``):

- ``encoder.onnx``: ``images`` [B, 3, S, S] in [0, 1] -> ``z`` [B, N, D]  (perception);
- ``predictor.onnx``: ``z`` [B, N, D], ``p`` [B, 10], ``a`` [B, 4] -> ``z_next`` [B, N, D],
  ``p_next`` [B, 10]  (the latent rollout and the surprise check);
- ``proprio.onnx``: ``zbar`` [B, D], ``p`` [B, 10], ``a`` [B, 4] -> ``p_next`` [B, 10]
  (the planner's fast path: one step of its candidate batch, the hot path).

Each graph passes ``onnx.checker`` (full check), and its outputs are compared with torch's
through onnxruntime on the CPU at several batch sizes: the largest absolute difference must
be at most :data:`PARITY_TOL` or the export fails with :class:`ParityError`. ``manifest.json``
records the names, shapes and dtypes read back from the files, the opset, the versions, the
parity figures and the source checkpoint's sha256.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wm_core.models.checkpoint import load_checkpoint
from wm_core.models.config import ACTION_DIM, PROPRIO_DIM
from wm_core.models.world_model import WorldModel

log = logging.getLogger(__name__)

OPSET = 18
MAX_BATCH = 8192
"""Upper bound of the dynamic batch (the planner's largest candidate batch is far below)."""
PARITY_TOL = 1e-4
"""Largest allowed |onnxruntime - torch| in FP32, per output."""
GRAPHS = ("encoder", "predictor", "proprio")
PARITY_BATCHES = {"encoder": (1, 5), "predictor": (1, 7, 128), "proprio": (1, 7, 128)}


class ExportError(RuntimeError):
    """The export could not be made or checked (one line, naming the file)."""


class ParityError(ExportError):
    """onnxruntime's outputs differ from torch's by more than the tolerance."""


class _Encoder(nn.Module):
    def __init__(self, model: WorldModel):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.encode(images)  # [B, 3, S, S] -> [B, N, D]


class _Predictor(nn.Module):
    def __init__(self, model: WorldModel):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor, p: torch.Tensor, a: torch.Tensor):
        return self.model.predict(z, p, a)  # [B, N, D], [B, 10]


class _Proprio(nn.Module):
    def __init__(self, model: WorldModel):
        super().__init__()
        self.model = model

    def forward(self, zbar: torch.Tensor, p: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.model.predictor.step_proprio(zbar, p, a)  # [B, 10]


class _Half(nn.Module):
    """FP16 inside, FP32 at the boundary: the strongly typed graph TensorRT 11 builds in FP16."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = copy.deepcopy(inner).half()

    def _out(self, out):
        return tuple(o.float() for o in out) if isinstance(out, tuple) else out.float()


class _Half1(_Half):
    def forward(self, x: torch.Tensor):
        return self._out(self.inner(x.half()))


class _Half3(_Half):
    def forward(self, x: torch.Tensor, p: torch.Tensor, a: torch.Tensor):
        return self._out(self.inner(x.half(), p.half(), a.half()))


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def example_inputs(model: WorldModel, graph: str, batch: int, seed: int = 0) -> dict:
    """Seeded inputs of ``graph`` at ``batch``: name -> float32 tensor."""
    cfg = model.cfg
    gen = torch.Generator().manual_seed(seed * 1000 + batch)
    n, d = cfg.grid * cfg.grid, cfg.latent_dim
    p = torch.rand(batch, PROPRIO_DIM, generator=gen)  # [B, 10]
    a = torch.rand(batch, ACTION_DIM, generator=gen) * 2 - 1  # [B, 4] in [-1, 1]
    if graph == "encoder":
        s = cfg.image_size
        return {"images": torch.rand(batch, 3, s, s, generator=gen)}  # [B, 3, S, S]
    with torch.no_grad():  # latents of the model's own range, from random images
        z = model.encode(torch.rand(batch, 3, cfg.image_size, cfg.image_size, generator=gen))
    if graph == "predictor":
        return {"z": z, "p": p, "a": a}  # [B, N, D], [B, 10], [B, 4]
    assert z.shape[1:] == (n, d)
    return {"zbar": z.mean(dim=1), "p": p, "a": a}  # [B, D], [B, 10], [B, 4]


def _module(model: WorldModel, graph: str) -> tuple[nn.Module, tuple[str, ...]]:
    if graph == "encoder":
        return _Encoder(model), ("z",)
    if graph == "predictor":
        return _Predictor(model), ("z_next", "p_next")
    return _Proprio(model), ("p_next",)


def _export_graph(model: WorldModel, graph: str, path: Path, half: bool = False) -> None:
    module, outputs = _module(model, graph)
    if half:
        module = _Half1(module) if graph == "encoder" else _Half3(module)
    inputs = example_inputs(model, graph, 2)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer chatter
        prog = torch.onnx.export(
            module.eval(),
            tuple(inputs.values()),
            input_names=list(inputs),
            output_names=list(outputs),
            opset_version=OPSET,
            dynamo=True,
            dynamic_shapes=tuple({0: batch} for _ in inputs),
            verbose=False,
        )
    prog.save(str(path))


def _describe(path: Path) -> dict:
    """Names, shapes (a string for a dynamic dimension) and dtypes, read back from the file."""
    import onnx

    m = onnx.load(str(path))

    def io(values) -> list[dict]:
        out = []
        for v in values:
            t = v.type.tensor_type
            shape = [d.dim_param or d.dim_value for d in t.shape.dim]
            dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name
            out.append({"name": v.name, "shape": shape, "dtype": dtype})
        return out

    opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None)
    return {"inputs": io(m.graph.input), "outputs": io(m.graph.output), "opset": opset}


def check_parity(model: WorldModel, out_dir: Path, seed: int = 0) -> dict:
    """Max |onnxruntime - torch| per graph (CPU, FP32) over :data:`PARITY_BATCHES`."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    result = {}
    for graph in GRAPHS:
        sess = ort.InferenceSession(
            str(out_dir / f"{graph}.onnx"), opts, providers=["CPUExecutionProvider"]
        )
        module, _ = _module(model, graph)
        worst = 0.0
        for b in PARITY_BATCHES[graph]:
            inputs = example_inputs(model, graph, b, seed)
            with torch.no_grad():
                ref = module(*inputs.values())
            ref = ref if isinstance(ref, tuple) else (ref,)
            got = sess.run(None, {k: v.numpy() for k, v in inputs.items()})
            for r, g in zip(ref, got, strict=True):
                if tuple(g.shape) != tuple(r.shape):
                    raise ParityError(f"{graph}.onnx: output {g.shape} where torch gives {r.shape}")
                worst = max(worst, float(np.abs(g - r.numpy()).max()))
        result[graph] = {"max_abs_err": worst, "batches": list(PARITY_BATCHES[graph])}
    return result


def export_onnx(checkpoint: Path, out_dir: Path, check: bool = True) -> dict:
    """Export ``checkpoint`` to ``out_dir`` (the three graphs + ``manifest.json``); returns the
    manifest. Raises :class:`ExportError` (or :class:`ParityError`) with one line."""
    import onnx

    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    model = load_checkpoint(checkpoint).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("torch.onnx", "onnxscript", "onnx_ir"):  # the exporter's INFO chatter
        logging.getLogger(name).setLevel(logging.WARNING)
    graphs = {}
    for graph in GRAPHS:
        path = out_dir / f"{graph}.onnx"
        try:
            _export_graph(model, graph, path)
            onnx.checker.check_model(onnx.load(str(path)), full_check=True)
        except (onnx.checker.ValidationError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExportError(f"{path}: export or ONNX check failed: {first}") from exc
        graphs[graph] = {"file": path.name, "sha256": sha256(path), **_describe(path)}
        half = out_dir / f"{graph}.fp16.onnx"  # for TensorRT 11 (strongly typed FP16)
        try:
            _export_graph(model, graph, half, half=True)
            onnx.checker.check_model(onnx.load(str(half)), full_check=True)
        except (onnx.checker.ValidationError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExportError(f"{half}: export or ONNX check failed: {first}") from exc
        graphs[graph]["fp16"] = {"file": half.name, "sha256": sha256(half)}
        log.info("exported %s and %s", path, half.name)
    manifest = {
        "format": "onnx",
        "opset": OPSET,
        "max_batch": MAX_BATCH,
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": sha256(checkpoint),
        "model_config": dataclasses.asdict(model.cfg),
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__},
        "graphs": graphs,
    }
    if check:
        import onnxruntime as ort

        parity = check_parity(model, out_dir)
        manifest["versions"]["onnxruntime"] = ort.__version__
        where = {"device": "cpu", "dtype": "float32", "tolerance": PARITY_TOL}
        manifest["parity"] = {**where, **parity}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if check:
        bad = {g: v["max_abs_err"] for g, v in parity.items() if v["max_abs_err"] > PARITY_TOL}
        if bad:
            raise ParityError(f"onnxruntime differs from torch by more than {PARITY_TOL}: {bad}")
    return manifest


def load_manifest(onnx_dir: Path) -> dict:
    """``manifest.json`` of an export, checked against the files it names (hashes)."""
    path = Path(onnx_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
        graphs = manifest["graphs"]
    except FileNotFoundError as exc:
        raise ExportError(f"{path} does not exist (wm export --format onnx makes it)") from exc
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ExportError(f"{path} is not an export manifest ({exc})") from exc
    for graph in GRAPHS:
        if graph not in graphs:
            raise ExportError(f"{path}: no {graph!r} graph listed")
        f = Path(onnx_dir) / graphs[graph]["file"]
        if not f.is_file():
            raise ExportError(f"{f} does not exist (listed in {path})")
        if sha256(f) != graphs[graph]["sha256"]:
            raise ExportError(f"{f} does not match the sha256 in {path}: re-run wm export")
    return manifest
