"""Tampered checkpoints: refused with one line naming the file, never executed.

Clean error: :class:`CheckpointError` whose one-line message names the file and carries no
advice to turn the protection off (``weights_only``). A valid result is a WorldModel."""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from fuzzlib import Target, fuzz_tests, scratch_dir
from hypothesis import strategies as st

from wm_core.models import ModelConfig, WorldModel
from wm_core.models.checkpoint import (
    CHECKPOINT_VERSION,
    CheckpointError,
    load_checkpoint,
    save_inference_checkpoint,
)

pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
SCRATCH = scratch_dir("wm_fuzz_ckpt_")
SENTINEL = SCRATCH / "PWNED"
TINY = ModelConfig(
    image_size=32, enc_channels=(4, 4), latent_dim=4, pred_channels=8, pred_blocks=1,
    proprio_hidden=8, expander_dim=8,
)  # fmt: skip


def _tiny_bytes() -> tuple[bytes, dict]:
    torch.manual_seed(0)
    path = SCRATCH / "tiny.pt"
    save_inference_checkpoint(path, WorldModel(TINY))
    return path.read_bytes(), torch.load(path, weights_only=True)


VALID, STATE = _tiny_bytes()


class Payload:
    """Unpickling this would call ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def payloads() -> list:
    touch = f"touch {SENTINEL}"
    return [
        Payload(os.system, touch),
        Payload(eval, f"open({str(SENTINEL)!r}, 'w')"),
        Payload(exec, f"open({str(SENTINEL)!r}, 'w')"),
        Payload(__import__("subprocess").call, ["touch", str(SENTINEL)]),
        Payload(open, str(SENTINEL), "w"),
        Payload(__import__, "os"),
    ]


def with_pickle(data_pkl: bytes) -> bytes:
    """The valid checkpoint's zip with its data.pkl replaced."""
    src, buf = zipfile.ZipFile(io.BytesIO(VALID)), io.BytesIO()
    with zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            body = data_pkl if info.filename.endswith("/data.pkl") else src.read(info)
            dst.writestr(info, body)
    return buf.getvalue()


def case_path() -> Path:
    return SCRATCH / f"case_{os.getpid()}.pt"


def load_bytes(payload: bytes) -> None:
    path = case_path()
    path.write_bytes(payload)
    try:
        model = load_checkpoint(path)
    except CheckpointError as exc:
        msg = str(exc)
        assert str(path) in msg and "weights_only" not in msg, msg
        raise
    finally:
        assert not SENTINEL.exists(), "a checkpoint ran code"
    assert isinstance(model, WorldModel)


@st.composite
def tampered_bytes(draw) -> bytes:
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.binary(max_size=3000))
    if kind == 1:
        return VALID[: draw(st.integers(0, len(VALID) - 1))]
    if kind == 2:
        data = bytearray(VALID)
        for _ in range(draw(st.integers(1, 8))):
            pos = draw(st.integers(0, len(data) - 1))
            data[pos] ^= 1 << draw(st.integers(0, 7))
        return bytes(data)
    if kind == 3:  # a malicious pickle, raw or inside the torch zip
        obj = draw(st.sampled_from(payloads()))
        wrapped = draw(st.sampled_from([obj, {"version": 2, "model": obj}, [obj], (1, obj)]))
        raw = pickle.dumps(wrapped, protocol=draw(st.integers(0, 5)))
        return with_pickle(raw) if draw(st.booleans()) else raw
    if kind == 4:  # random pickle opcodes in data.pkl
        return with_pickle(draw(st.binary(max_size=300)) + b".")
    data = bytearray(with_pickle(pickle.dumps(STATE["model_config"], protocol=2)))
    pos = draw(st.integers(0, len(data) - 1))
    data[pos : pos + 4] = draw(st.binary(min_size=4, max_size=4))
    return bytes(data)


values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=8)
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
tensors = st.builds(
    lambda shape, dtype: torch.zeros(shape, dtype=dtype),
    st.lists(st.integers(0, 5), max_size=4).map(tuple),
    st.sampled_from([torch.float32, torch.float64, torch.int64, torch.bool, torch.uint8]),
)


@st.composite
def tampered_dicts(draw) -> bytes:
    """A well-formed torch file whose contents are wrong: version, config, weights."""
    state = {k: v for k, v in STATE.items()}
    cfg = dict(state["model_config"])
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from([*cfg, "unknown_field"]))
        cfg[key] = draw(st.one_of(values, st.integers(0, 5000), st.just([4, 4])))
    state["model_config"] = draw(st.one_of(st.just(cfg), values))
    weights = dict(state["model"])
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from([*weights, "extra.weight"]))
        if draw(st.booleans()):
            weights.pop(key, None)
        else:
            weights[key] = draw(st.one_of(tensors, values))
    state["model"] = draw(st.one_of(st.just(weights), values))
    state["version"] = draw(st.one_of(st.just(CHECKPOINT_VERSION), values))
    buf = io.BytesIO()
    torch.save(draw(st.one_of(st.just(state), values)), buf)
    return buf.getvalue()


TARGETS = [
    Target("checkpoint.bytes", tampered_bytes(), load_bytes, (CheckpointError,), quick=300),
    Target("checkpoint.contents", tampered_dicts(), load_bytes, (CheckpointError,), quick=120),
]


test_fuzz, test_fuzz_10k = fuzz_tests(TARGETS)


@pytest.mark.parametrize("in_zip", [False, True], ids=["raw-pickle", "torch-zip"])
def test_malicious_pickle_is_refused_in_one_line_and_never_runs(tmp_path, in_zip):
    marker = tmp_path / "pwned"
    raw = pickle.dumps({"version": 2, "x": Payload(os.system, f"touch {marker}")}, protocol=2)
    path = tmp_path / "model.pt"
    path.write_bytes(with_pickle(raw) if in_zip else raw)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert msg == (
        f"{path}: not a valid or safe checkpoint; refused (its pickle would import posix.system)"
    )
    assert "weights_only" not in msg and "\n" not in msg
    assert not marker.exists()


def test_truncated_and_random_checkpoints_are_one_line_errors(tmp_path):
    path = tmp_path / "model.pt"
    for payload in (VALID[: len(VALID) // 2], os.urandom(4096), b"", VALID[:100]):
        path.write_bytes(payload)
        with pytest.raises(CheckpointError, match="not a valid or safe checkpoint") as info:
            load_checkpoint(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_config_that_would_allocate_gigabytes_is_refused_first(tmp_path):
    """A config asking for 4096-channel stages with the tiny weights: refused by shape on a
    meta-device model, before the real (multi-GB) model would be built."""
    state = dict(STATE)
    state["model_config"] = dataclasses.asdict(
        dataclasses.replace(TINY, image_size=512, enc_channels=(4096,) * 9)
    )
    path = tmp_path / "big.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="expects"):
        load_checkpoint(path)
    assert isinstance(load_checkpoint(_write(tmp_path / "ok.pt", VALID)), WorldModel)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
