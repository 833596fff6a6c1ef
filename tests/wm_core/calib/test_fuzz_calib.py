"""Fuzz the calibration file readers (``wm_core.calib.io``) with hostile YAML.

``read_camera_info`` (a ROS camera_info YAML) and ``read_handeye_samples`` (what ``wm
calibrate handeye --samples`` reads). Clean error: :class:`ConfigError` with a one-line
message. A valid result must be usable as is: finite intrinsics with positive focal lengths
and 5 finite distortion coefficients; finite rigid transforms, at least ``MIN_POSES`` of them.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import yaml
from fuzzlib import Target, fuzz_tests, scratch_dir
from hypothesis import strategies as st

from wm_core.calib.handeye import MIN_POSES
from wm_core.calib.io import read_camera_info, read_handeye_samples
from wm_core.config import ConfigError

SCRATCH = scratch_dir("wm_fuzz_calib_")

hostile_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, -1, 1e308, -1e308, 5e-324, float("nan"), float("inf")]),
)
scalars = st.one_of(
    hostile_numbers, st.booleans(), st.none(), st.text(max_size=12), st.floats(-2.0, 2.0)
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=4),
    ),
    max_leaves=16,
)


def _matrix(rows: int, cols: int, good: list[float]) -> st.SearchStrategy:
    """A {rows, cols, data} mapping: the good one, or one with hostile parts."""
    data = st.one_of(
        st.just(good),
        st.lists(st.one_of(st.floats(-1e3, 1e3), hostile_numbers), min_size=0, max_size=14),
        st.lists(st.floats(-1e3, 1e3), min_size=rows * cols, max_size=rows * cols),
        values,
    )
    return st.one_of(
        st.fixed_dictionaries(
            {"rows": st.one_of(st.just(rows), values), "cols": st.one_of(st.just(cols), values)},
            optional={"data": data},
        ),
        values,
    )


K_GOOD = [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0]


GOOD_INFO = {
    "image_width": 640,
    "image_height": 480,
    "camera_name": "cam",
    "camera_matrix": {"rows": 3, "cols": 3, "data": K_GOOD},
    "distortion_model": "plumb_bob",
    "distortion_coefficients": {"rows": 1, "cols": 5, "data": [0.1, -0.05, 0.0, 0.0, 0.0]},
}
GOOD_ENTRY = {
    "T_base_tool": {"xyz": [0.4, 0.0, 0.3], "quat_xyzw": [1.0, 0.0, 0.0, 0.0]},
    "T_cam_board": {"rvec": [0.1, -2.9, 0.2], "tvec": [0.05, -0.02, 0.9]},
}


def _edited(base: dict, paths: list[tuple], hostile: st.SearchStrategy) -> st.SearchStrategy:
    """``base`` with 0-3 of ``paths`` (key tuples) set to hostile values or removed: mostly
    one bad field in an otherwise valid file (0 edits: the valid file itself)."""
    import copy

    def apply(edits) -> dict:
        doc = copy.deepcopy(base)
        for path, value, remove in edits:
            node = doc
            for k in path[:-1]:
                in_dict = isinstance(node, dict) and k in node
                in_list = isinstance(node, list) and isinstance(k, int) and k < len(node)
                if not (in_dict or in_list):
                    node = None
                    break
                node = node[k]
            if isinstance(node, dict):
                if remove:
                    node.pop(path[-1], None)
                else:
                    node[path[-1]] = value
        return doc

    edit = st.tuples(st.sampled_from(paths), hostile, st.booleans())
    return st.one_of(st.lists(edit, max_size=1), st.lists(edit, max_size=3)).map(apply)


INFO_PATHS = [
    *((k,) for k in GOOD_INFO),
    *((m, f) for m in ("camera_matrix", "distortion_coefficients") for f in ("rows", "data")),
    ("rectification_matrix",),
    ("projection_matrix",),
]
NEAR_K = st.lists(st.floats(-1e3, 1e3), min_size=9, max_size=9)


def near_valid_camera_info() -> st.SearchStrategy:
    return _edited(GOOD_INFO, INFO_PATHS, st.one_of(values, NEAR_K, hostile_numbers))


def near_valid_samples() -> st.SearchStrategy:
    paths = [
        ("camera_info",),
        ("tool_frame",),
        *(
            ("samples", i, part, k)
            for i in range(3)
            for part, keys in (
                ("T_base_tool", ("xyz", "quat_xyzw")),
                ("T_cam_board", ("rvec", "tvec")),
            )
            for k in keys
        ),
    ]

    def doc(n: int) -> dict:
        import copy

        return {
            "camera_info": "camera.yaml",
            "samples": [copy.deepcopy(GOOD_ENTRY) for _ in range(n)],
        }

    vec = st.lists(st.one_of(st.floats(-5.0, 5.0), hostile_numbers), min_size=3, max_size=4)
    return st.one_of(st.integers(MIN_POSES, 6), st.integers(0, 6)).flatmap(
        lambda n: _edited(doc(n), paths, st.one_of(values, vec))
    )


def camera_info_docs() -> st.SearchStrategy:
    return st.one_of(near_valid_camera_info(), _loose_camera_info())


def _loose_camera_info() -> st.SearchStrategy:
    return st.fixed_dictionaries(
        {},
        optional={
            "image_width": st.one_of(st.just(640), values),
            "image_height": st.one_of(st.just(480), values),
            "camera_name": st.one_of(st.just("cam"), values),
            "camera_matrix": _matrix(3, 3, K_GOOD),
            "distortion_model": st.one_of(st.just("plumb_bob"), values),
            "distortion_coefficients": _matrix(1, 5, [0.1, -0.05, 0.0, 0.0, 0.0]),
            "rectification_matrix": _matrix(3, 3, [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]),
            "projection_matrix": _matrix(3, 4, [*K_GOOD[:3], 0.0, *K_GOOD[3:6], 0.0, 0, 0, 1, 0]),
            "extra": values,
        },
    )


def _vec(n: int, good: list[float]) -> st.SearchStrategy:
    return st.one_of(
        st.just(good),
        st.lists(st.floats(-5.0, 5.0), min_size=n, max_size=n),
        st.lists(st.one_of(st.floats(-5.0, 5.0), hostile_numbers), max_size=n + 2),
        values,
    )


def sample_entries() -> st.SearchStrategy:
    tool = st.fixed_dictionaries(
        {},
        optional={
            "xyz": _vec(3, [0.4, 0.0, 0.3]),
            "quat_xyzw": _vec(4, [1.0, 0.0, 0.0, 0.0]),
            "frame": values,
        },
    )
    board = st.fixed_dictionaries(
        {},
        optional={"rvec": _vec(3, [0.1, -2.9, 0.2]), "tvec": _vec(3, [0.05, -0.02, 0.9])},
    )
    entry = st.fixed_dictionaries(
        {},
        optional={"T_base_tool": st.one_of(tool, values), "T_cam_board": st.one_of(board, values)},
    )
    return st.one_of(entry, values)


def samples_docs() -> st.SearchStrategy:
    return st.one_of(
        near_valid_samples(),
        st.fixed_dictionaries(
            {},
            optional={
                "camera_info": st.one_of(st.just("camera.yaml"), values),
                "tool_frame": st.one_of(st.just("tool0"), values),
                "samples": st.one_of(st.lists(sample_entries(), max_size=12), values),
                "other": values,
            },
        ),
        values,
    )


def _texts(docs: st.SearchStrategy) -> st.SearchStrategy:
    """YAML text of a document, or that text cut, spliced or with a byte flipped, or bytes."""

    def dump(doc) -> bytes:
        try:
            return yaml.safe_dump(doc, allow_unicode=True).encode()
        except (yaml.YAMLError, ValueError):  # not representable (e.g. a huge int)
            return b"{}"

    text = docs.map(dump)
    return st.one_of(
        text,
        text,  # the document whole, twice as often as each way of breaking its bytes
        st.tuples(text, st.floats(0.0, 1.0)).map(lambda t: t[0][: int(len(t[0]) * t[1])]),
        st.tuples(text, st.integers(0, 10**6), st.integers(0, 255)).map(
            lambda t: (
                t[0][: t[1] % (len(t[0]) or 1)]
                + bytes([t[2]])
                + t[0][t[1] % (len(t[0]) or 1) + 1 :]
            )
        ),
        st.sampled_from(CRAFTED),
        st.binary(max_size=64),
    )


CRAFTED = [
    b"",
    b"\xff\xfe\x00",
    b"camera_matrix: !!python/object/apply:os.system ['touch /tmp/wm_fuzz_pwned']\n",
    b"a: &a [1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b]\n"
    b"d: &d [*c,*c,*c,*c,*c,*c,*c,*c]\ncamera_matrix: {rows: 3, cols: 3, data: [*d,*d,*d]}\n",
    b"samples: " + b"[" * 3000 + b"]" * 3000 + b"\n",
    b"image_width: " + b"9" * 5000 + b"\n",
    b"--- 1\n--- 2\n",
]


def _file(payload: bytes) -> Path:
    path = SCRATCH / f"case_{os.getpid()}.yaml"
    path.write_bytes(payload)
    return path


def check_camera_info(payload: bytes) -> None:
    intr = read_camera_info(_file(payload))
    k, d = np.asarray(intr.K, float), np.asarray(intr.D, float)
    assert k.shape == (3, 3) and np.isfinite(k).all() and k[0, 0] > 0 and k[1, 1] > 0, k
    assert d.shape == (5,) and np.isfinite(d).all(), d
    assert isinstance(intr.width, int) and intr.width > 0 and intr.height > 0


def check_samples(payload: bytes) -> None:
    s = read_handeye_samples(_file(payload))
    for T in (s.T_base_tool, s.T_cam_board):
        T = np.asarray(T, float)
        assert T.ndim == 3 and T.shape[1:] == (4, 4) and len(T) >= MIN_POSES, T.shape
        assert np.isfinite(T).all()
        r = T[:, :3, :3]  # rotations: orthonormal
        assert np.allclose(r @ r.transpose(0, 2, 1), np.eye(3), atol=1e-6)
    assert isinstance(s.camera_info, str) and s.camera_info
    assert math.isfinite(float(np.asarray(s.T_cam_board)[:, 2, 3].min()))


TARGETS = [
    Target("calib.camera_info_yaml", _texts(camera_info_docs()), check_camera_info, (ConfigError,)),
    Target("calib.handeye_samples_yaml", _texts(samples_docs()), check_samples, (ConfigError,)),
]

test_fuzz, test_fuzz_10k = fuzz_tests(TARGETS)


def test_a_valid_file_reads_back():
    """The strategies' good corner is valid: the checks accept what the readers return."""
    check_camera_info(yaml.safe_dump(GOOD_INFO).encode())
    doc = {"camera_info": "camera.yaml", "samples": [GOOD_ENTRY] * MIN_POSES}
    check_samples(yaml.safe_dump(doc).encode())


def test_a_huge_rotation_vector_is_refused_not_read_as_a_broken_transform():
    """Found at 10^4 cases: rvec [0, 0, 1.34e154] is finite, but its rotation matrix is not
    (the reader returned NaN in the transform)."""
    import copy

    import pytest

    bad = copy.deepcopy(GOOD_ENTRY)
    bad["T_cam_board"]["rvec"] = [0.0, 0.0, 1.3407807929942597e154]
    doc = {"camera_info": "camera.yaml", "samples": [bad] + [GOOD_ENTRY] * MIN_POSES}
    with pytest.raises(ConfigError, match=r"samples\[0\]\.T_cam_board is not a rigid transform"):
        check_samples(yaml.safe_dump(doc).encode())
