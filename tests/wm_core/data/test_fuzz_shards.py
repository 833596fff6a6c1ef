"""Fuzz the shard reader (``wm_core.data.shards.load_shard``) with hostile files.

Clean error: :class:`ShardError` (one line, naming the file). A valid result must satisfy
the documented layout (shapes, dtypes, finite values, a dict meta)."""

from __future__ import annotations

import io
import json
import os
import resource
import struct
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fuzzlib import Target, fuzz_tests, scratch_dir
from hypothesis import strategies as st

from wm_core.data.shards import SHARD_VERSION, Episode, ShardError, load_shard, save_shard

SCRATCH = scratch_dir("wm_fuzz_shards_")


def valid_arrays(n: int = 4, size: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "obs/image": rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8),
        "obs/joint_pos": rng.normal(size=(n, 6)).astype(np.float32),
        "obs/joint_vel": rng.normal(size=(n, 6)).astype(np.float32),
        "obs/suction": np.zeros((n, 1), np.float32),
        "action": rng.uniform(-1, 1, (n - 1, 4)).astype(np.float32),
        "label/tool_pos": rng.normal(size=(n, 3)).astype(np.float32),
        "label/object_pos": rng.normal(size=(n, 2, 3)).astype(np.float32),
        "format_version": np.array(SHARD_VERSION),
        "meta": np.array(json.dumps({"seed": 0, "source": "fuzz"})),
    }


def _npz_bytes(arrays: dict, compressed: bool = True) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


VALID = _npz_bytes(valid_arrays())


def _case_path() -> Path:
    return SCRATCH / f"case_{os.getpid()}.npz"


def check_valid_episode(ep: Episode) -> None:
    n = ep.obs["joint_pos"].shape[0]
    assert ep.action.shape == (n - 1, 4) and ep.action.dtype.kind == "f"
    for k in ("joint_pos", "joint_vel"):
        assert ep.obs[k].shape == (n, 6) and np.isfinite(ep.obs[k]).all()
    assert ep.obs["suction"].shape == (n, 1) and np.isfinite(ep.obs["suction"]).all()
    assert np.isfinite(ep.action).all()
    if "image" in ep.obs:
        im = ep.obs["image"]
        assert im.dtype == np.uint8 and im.ndim == 4 and im.shape[0] == n and im.shape[3] == 3
    assert isinstance(ep.meta, dict)
    for v in (ep.labels or {}).values():
        assert v.shape[0] == n and np.isfinite(v).all()


def load_bytes(payload: bytes) -> None:
    path = _case_path()
    path.write_bytes(payload)
    try:
        check_valid_episode(load_shard(path, with_labels=True))
    except ShardError as exc:
        assert str(path) in str(exc)
        raise


# ---------------------------------------------------------------- 1. raw bytes
@st.composite
def damaged_bytes(draw) -> bytes:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.binary(max_size=4000))
    if kind == 1:  # truncated
        return VALID[: draw(st.integers(0, len(VALID) - 1))]
    data = bytearray(VALID)
    for _ in range(draw(st.integers(1, 8))):  # flipped / overwritten bytes
        pos = draw(st.integers(0, len(data) - 1))
        if kind == 2:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        else:
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[pos : pos + len(chunk)] = chunk
    return bytes(data)


# ---------------------------------------------------------------- 2. wrong arrays
KEYS = list(valid_arrays())
weird_arrays = st.one_of(
    st.sampled_from(
        [
            np.array(1),
            np.array(2),
            np.array(-1),
            np.array([1, 1]),
            np.array(1.0),
            np.array(True),
            np.array("1"),
            np.array(b"1"),
            np.array(1 + 2j),
            np.zeros(0),
            np.zeros((0, 6), np.float32),
            np.zeros((4, 6), np.int64),
            np.full((4, 6), np.nan, np.float32),
            np.full((3, 4), np.inf, np.float32),
            np.zeros((4, 6), np.float16),
            np.zeros((4, 6), "U3"),
            np.zeros((4, 6), [("a", "<f4"), ("b", "<i2")]),
            np.zeros((4, 0, 0, 3), np.uint8),
            np.zeros((4, 8, 8, 3), np.float32),
            np.zeros((4, 8, 8, 4), np.uint8),
            np.array("not json {"),
            np.array("[" * 100_000 + "]" * 100_000),
            np.array("[1, 2]"),
            np.array("null"),
            np.array("NaN"),
            np.array(json.dumps({"a": 1})),
        ]
    ),
    st.builds(
        lambda shape, dtype: np.zeros(shape, dtype),
        st.lists(st.integers(0, 7), max_size=4).map(tuple),
        st.sampled_from(["<f4", ">f8", "<i4", "u1", "?", "<c8", "<U2", "S3"]),
    ),
)


@st.composite
def edited_arrays(draw) -> tuple[dict, bool]:
    n = draw(st.integers(1, 5))
    arrays = valid_arrays(n=max(n, 1))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.integers(0, 3))
        key = draw(st.sampled_from(KEYS))
        if op == 0:
            arrays.pop(key, None)
        elif op == 1:
            arrays[key] = draw(weird_arrays)
        elif op == 2 and key in arrays and arrays[key].dtype.kind == "f" and arrays[key].size:
            a = arrays[key].copy()
            a.flat[draw(st.integers(0, a.size - 1))] = draw(
                st.sampled_from([np.nan, np.inf, -np.inf, 1e38])
            )
            arrays[key] = a
        else:
            arrays[draw(st.text(min_size=1, max_size=12))] = draw(weird_arrays)
    if draw(st.booleans()):  # an object array (pickled when written)
        arrays["meta"] = np.array([{"a": 1}], dtype=object)
    return arrays, draw(st.booleans())


def load_arrays(case) -> None:
    arrays, compressed = case
    try:
        payload = _npz_bytes(arrays, compressed)
    except (ValueError, TypeError):  # not writable as npz (a key numpy refuses)
        return
    load_bytes(payload)


# ---------------------------------------------------------------- 3. zip bombs / lying headers
def npy_header(shape: tuple, descr: str = "<f4") -> bytes:
    """A version-1.0 .npy header claiming ``shape`` (no data follows)."""
    d = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, }}"
    d += " " * ((64 - (10 + len(d) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d)) + d.encode()


def lie_sizes(payload: bytes, size: int) -> bytes:
    """Patch every member's declared uncompressed size (local and central headers)."""
    data = bytearray(payload)
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        i = data.find(sig)
        while i >= 0:
            data[i + offset : i + offset + 4] = struct.pack("<I", size)
            i = data.find(sig, i + 4)
    return bytes(data)


@st.composite
def bomb_specs(draw) -> tuple:
    """A small description of a hostile zip (built by :func:`build_bomb` in the check:
    hypothesis keeps what a strategy returns, and megabytes per case would add up)."""
    method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    members = []
    for key in draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=len(KEYS))):
        shape = tuple(draw(st.lists(st.integers(0, 2**40), max_size=4)))
        descr = draw(st.sampled_from(["<f4", "<f8", "|u1", "<U100000", "|O"]))
        tail = draw(st.binary(max_size=64))
        padding = draw(st.integers(0, 1 << 20)) if draw(st.booleans()) else 0
        members.append((key, shape, descr, tail, padding))
    lie = draw(st.integers(0, 2**32 - 1)) if draw(st.booleans()) else None
    return method, members, lie


def build_bomb(spec: tuple) -> bytes:
    method, members, lie = spec
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for key, shape, descr, tail, padding in members:
            body = npy_header(shape, descr) + tail + bytes(padding)  # compressible padding
            with warnings.catch_warnings():  # duplicate member names are part of the test
                warnings.simplefilter("ignore", UserWarning)
                zf.writestr(key + ".npy", body)
    payload = buf.getvalue()
    return payload if lie is None else lie_sizes(payload, lie)


def load_bomb(spec: tuple) -> None:
    load_bytes(build_bomb(spec))


TARGETS = [
    Target("shards.bytes", damaged_bytes(), load_bytes, (ShardError,), quick=300),
    Target("shards.arrays", edited_arrays(), load_arrays, (ShardError,), quick=300),
    Target(
        "shards.zip_bomb",
        bomb_specs(),
        load_bomb,
        (ShardError,),
        quick=150,
        max_rss_growth_mb=300,
    ),
]


test_fuzz, test_fuzz_10k = fuzz_tests(TARGETS)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_lying_npy_header_is_refused_without_allocating(tmp_path):
    """A member whose header claims 4 TiB of float32 is refused before numpy allocates it."""
    arrays = valid_arrays()
    payload = _npz_bytes(arrays, compressed=False)
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(payload)) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "action.npy":
                body = npy_header((2**40,)) + b"\0" * 64
            dst.writestr(info.filename, body)
    path = tmp_path / "liar.npz"
    path.write_bytes(buf.getvalue())
    before = _peak_mb()
    with pytest.raises(ShardError, match=r"action\.npy claims float32 \[1099511627776\]"):
        load_shard(path)
    assert _peak_mb() - before < 100
    # and a central directory that claims 4 GiB for every member
    path.write_bytes(lie_sizes(_npz_bytes(arrays), 2**32 - 1))
    with pytest.raises(ShardError, match="zip bomb"):
        load_shard(path)


def _write_bomb(path: Path, member_bytes: int) -> None:
    """A shard whose obs/image member is ``member_bytes`` of zeros (deflates ~1000:1),
    written in chunks so the test itself never holds it in memory."""
    arrays = valid_arrays()
    n = member_bytes // (64 * 64 * 3)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for k, v in arrays.items():
            if k != "obs/image":
                buf = io.BytesIO()
                np.save(buf, v)
                zf.writestr(k + ".npy", buf.getvalue())
        with zf.open("obs/image.npy", "w", force_zip64=True) as f:
            f.write(npy_header((n, 64, 64, 3), "|u1"))
            chunk = bytes(1 << 20)
            left = n * 64 * 64 * 3
            while left:
                f.write(chunk[: min(left, len(chunk))])
                left -= min(left, len(chunk))


def test_real_zip_bomb_is_refused_by_its_declared_size(tmp_path):
    path = tmp_path / "bomb.npz"
    _write_bomb(path, 48 << 20)  # 48 MiB of zeros in a ~50 kB file
    assert path.stat().st_size < 1 << 20
    before = _peak_mb()
    with pytest.raises(ShardError, match="over the 16777216-byte limit"):
        load_shard(path, max_bytes=16 << 20)
    assert _peak_mb() - before < 30


@pytest.mark.slow
def test_real_zip_bomb_over_the_default_limit(tmp_path):
    """1.1 GiB of zeros in a ~1 MB file, at the default 1 GiB limit: refused, not inflated."""
    path = tmp_path / "bomb.npz"
    _write_bomb(path, 1100 << 20)
    before = _peak_mb()
    with pytest.raises(ShardError, match="zip bomb"):
        load_shard(path)
    assert _peak_mb() - before < 100


def test_missing_meta_and_bad_version_are_shard_errors(tmp_path):
    path = tmp_path / "s.npz"
    for edit, match in [
        ({"meta": None}, "meta is missing"),
        ({"format_version": np.array([1, 1])}, "format_version is int64 \\[2\\]"),
        ({"format_version": np.array(1.0)}, "format_version is float64"),
        ({"format_version": np.array(2)}, "version 2, expected 1"),
        ({"meta": np.array("[1]")}, "meta is list"),
        ({"meta": np.array("[" * 100_000)}, "meta is not valid JSON"),
        ({"obs/joint_pos": np.zeros((4, 6), "U3")}, "expected floating point"),
        ({"obs/joint_pos": np.array(1.0, np.float32)}, "expected \\(T\\+1, 6\\)"),
    ]:
        arrays = {k: v for k, v in {**valid_arrays(), **edit}.items() if v is not None}
        path.write_bytes(_npz_bytes(arrays))
        with pytest.raises(ShardError, match=match):
            load_shard(path)
    ep = Episode(
        {k[4:]: v for k, v in valid_arrays().items() if k.startswith("obs/")},
        valid_arrays()["action"],
        {"seed": 1},
    )
    save_shard(path, ep)
    check_valid_episode(load_shard(path))
