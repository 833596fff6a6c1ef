"""TensorRT engine cache: reuse, rebuild when stale, refuse another TensorRT or GPU. The
cache decisions are plain Python and run everywhere; building and running an engine needs
TensorRT and a CUDA GPU and is skipped without them."""

from __future__ import annotations

import dataclasses
import importlib.util
import json

import pytest

from wm_core.deploy.tensorrt import (
    EngineKey,
    EngineMismatchError,
    check_cached,
    read_record,
    record_path,
)

KEY = EngineKey("ab" * 32, "10.3.0", "Orin", "fp16", (1, 128, 4096))


def cached(tmp_path, key: EngineKey | None):
    engine = tmp_path / "proprio.fp16.engine"
    engine.write_bytes(b"engine")
    if key is not None:
        record_path(engine).write_text(json.dumps(dataclasses.asdict(key)))
    return engine


def test_a_matching_engine_is_used_and_a_missing_or_forced_one_built(tmp_path):
    assert check_cached(tmp_path / "none.engine", KEY, force=False) == "build"
    engine = cached(tmp_path, KEY)
    assert read_record(engine) == KEY
    assert check_cached(engine, KEY, force=False) == "use"
    assert check_cached(engine, KEY, force=True) == "build"


@pytest.mark.parametrize(
    "change", [{"onnx_sha256": "cd" * 32}, {"precision": "fp32"}, {"batch": (1, 64, 1024)}]
)
def test_a_stale_engine_is_rebuilt(tmp_path, change, caplog):
    engine = cached(tmp_path, KEY)
    caplog.set_level("INFO", logger="wm_core.deploy.tensorrt")
    assert check_cached(engine, dataclasses.replace(KEY, **change), force=False) == "build"
    assert "stale" in caplog.text and next(iter(change)) in caplog.text


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            {"tensorrt": "10.8.0"},
            "built with TensorRT 10.3.0 on 'Orin', but this is TensorRT 10.8.0",
        ),
        ({"gpu": "NVIDIA H100"}, "but this is TensorRT 10.3.0 on 'NVIDIA H100'"),
    ],
)
def test_an_engine_from_another_tensorrt_or_gpu_is_refused_with_the_reason(tmp_path, change, words):
    engine = cached(tmp_path, KEY)
    with pytest.raises(EngineMismatchError, match="force_engine_update") as e:
        check_cached(engine, dataclasses.replace(KEY, **change), force=False)
    assert words in str(e.value)
    assert check_cached(engine, dataclasses.replace(KEY, **change), force=True) == "build"


def test_an_engine_without_a_build_record_is_refused(tmp_path):
    engine = cached(tmp_path, None)
    with pytest.raises(EngineMismatchError, match="no build record"):
        check_cached(engine, KEY, force=False)
    record_path(engine).write_text("{broken")
    with pytest.raises(EngineMismatchError, match="unreadable engine build record"):
        check_cached(engine, KEY, force=False)


def test_engine_keys_are_validated():
    with pytest.raises(ValueError, match="precision"):
        dataclasses.replace(KEY, precision="int8")
    with pytest.raises(ValueError, match="batch"):
        dataclasses.replace(KEY, batch=(8, 4, 16))


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


@pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is None or not _cuda(),
    reason="needs TensorRT and a CUDA GPU (neither is on the dev machines or in CI)",
)
def test_tensorrt_engines_build_cache_and_match_torch(tiny_exported, tmp_path):
    import torch

    from wm_core.deploy.backends import make_backend
    from wm_core.deploy.config import BackendConfig

    cfg = BackendConfig(backend="tensorrt", engine_dir=str(tmp_path), max_batch=256)
    trt_model, ref = make_backend(tiny_exported, cfg), make_backend(tiny_exported)
    z = ref.encode(torch.rand(1, 3, 64, 64))
    assert trt_model.encode(torch.rand(1, 3, 64, 64)).shape == z.shape
    p, acts = torch.rand(128, 10), torch.rand(128, 5, 4) * 2 - 1
    err = (trt_model.rollout_proprio(z, p, acts) - ref.rollout_proprio(z, p, acts)).abs().max()
    assert err < 5e-2  # FP16
    records = sorted(tmp_path.glob("*.engine.json"))
    assert len(records) == 3
    make_backend(tiny_exported, cfg)  # the second start uses the cache
