"""Fuzz the config loaders (``wm_core.config.load_yaml`` / ``from_mapping``) with hostile YAML.

Clean error: :class:`ConfigError` with a one-line message. A valid result must be an instance
of the class whose every field has the annotated type (no string where a number goes, no NaN).
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from pathlib import Path

import pytest
import yaml
from fuzzlib import Target, fuzz_tests, scratch_dir
from hypothesis import strategies as st

from wm_core.cell import PYBULLET_CELL_FILE, SIM_CELL_FILE
from wm_core.config import ConfigError, from_mapping, load_yaml
from wm_core.data.bag_import import ImportConfig
from wm_core.data.collect import CollectConfig
from wm_core.models.config import ModelConfig
from wm_core.plan.config import CostWeights, PlannerConfig, TaskConfig
from wm_core.sim.config import SceneConfig

CLASSES = (
    SceneConfig,
    PlannerConfig,
    TaskConfig,
    CostWeights,
    ModelConfig,
    ImportConfig,
    CollectConfig,
)
OTHER_CLASSES = CLASSES[1:]
SCRATCH = scratch_dir("wm_fuzz_config_")

# ---------------------------------------------------------------- hostile values
huge_ints = st.integers(min_value=-(10**400), max_value=10**400)
special_floats = st.sampled_from(
    [math.nan, math.inf, -math.inf, 0.0, -0.0, 5e-324, 1.7976931348623157e308, -1e308, 1e-300]
)
numbers = st.one_of(
    st.integers(-5, 2000),
    huge_ints,
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-2.0, 100.0),
    special_floats,
)
text = st.text(max_size=20)
numeric_strings = st.sampled_from(
    ["1", "0.5", "1e3", ".inf", "-.inf", ".nan", "NaN", "yes", "no", "null", "~", "0x10", "1_000"]
)
scalars = st.one_of(numbers, st.booleans(), st.none(), text, numeric_strings)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.dictionaries(
            st.one_of(text, st.integers(), st.booleans(), st.none()), inner, max_size=4
        ),
    ),
    max_leaves=20,
)


def near_valid(cls) -> st.SearchStrategy:
    """The default value of a field, or a list of the right shape with hostile numbers."""

    def for_field(f: dataclasses.Field) -> st.SearchStrategy:
        default = f.default if f.default is not dataclasses.MISSING else None
        if isinstance(default, tuple):
            flat = _shape_like(default)
            return st.one_of(st.just(_to_lists(default)), flat)
        if dataclasses.is_dataclass(default):
            return st.fixed_dictionaries(
                {}, optional={g.name: values for g in dataclasses.fields(default)}
            )
        return st.one_of(st.just(default), values)

    return st.fixed_dictionaries(
        {}, optional={f.name: for_field(f) for f in dataclasses.fields(cls)}
    )


def _to_lists(v):
    return [_to_lists(x) for x in v] if isinstance(v, tuple) else v


def _shape_like(v) -> st.SearchStrategy:
    if isinstance(v, tuple):
        if not v:
            return st.lists(numbers, max_size=3)
        return st.one_of(
            st.tuples(*[_shape_like(x) for x in v]).map(list),
            st.lists(_shape_like(v[0]), max_size=len(v) + 2),
        )
    return st.one_of(numbers, scalars)


def documents(cls) -> st.SearchStrategy:
    """Mappings of real field names (plus unknown and non-string keys), or any YAML value."""
    fields = [f.name for f in dataclasses.fields(cls)]
    return st.one_of(
        near_valid(cls),
        st.dictionaries(st.sampled_from(fields), values, max_size=len(fields)),
        st.builds(
            lambda a, b: {**a, **b},
            near_valid(cls),
            st.dictionaries(st.one_of(text, st.integers(), st.booleans()), values, max_size=2),
        ),
        values,
    )


# ---------------------------------------------------------------- validity of results
def well_typed(obj) -> None:
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        _conforms(f.name, getattr(obj, f.name), hints[f.name])


def _conforms(name: str, v, hint) -> None:
    if hint is float:
        assert isinstance(v, float) and not math.isnan(v), (name, v)
    elif hint is int:
        assert isinstance(v, int) and not isinstance(v, bool), (name, v)
    elif hint is bool:
        assert isinstance(v, bool), (name, v)
    elif hint is str:
        assert isinstance(v, str), (name, v)
    elif dataclasses.is_dataclass(hint):
        assert isinstance(v, hint), (name, v)
        well_typed(v)
    elif typing.get_origin(hint) is tuple:
        assert isinstance(v, tuple), (name, v)
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(v)
        assert len(args) == len(v), (name, v)
        for i, (x, a) in enumerate(zip(v, args, strict=True)):
            _conforms(f"{name}[{i}]", x, a)


def _yaml_file(payload: bytes) -> Path:
    path = SCRATCH / f"case_{os.getpid()}.yaml"
    path.write_bytes(payload)
    return path


def check_document(case) -> None:
    cls, doc = case
    try:
        text = yaml.safe_dump(doc, allow_unicode=True).encode()
    except (yaml.YAMLError, ValueError):  # not representable (e.g. int too long for str)
        text = None
    if text is not None:
        try:
            well_typed(load_yaml(cls, _yaml_file(text)))
        except ConfigError as exc:
            from fuzzlib import check_clean

            check_clean(exc)
    well_typed(from_mapping(cls, doc, "fuzz"))


# ---------------------------------------------------------------- malformed YAML text
VALID_TEXT = [
    "n_objects: 3\nmax_episode_s: 60.0\n",
    "object_half_size: [0.02, 0.03]\nkeepout_boxes:\n  - [[0.85, -0.7, 0.0], [1.4, 0.7, 2.0]]\n",
    "optimizer: cem\nhorizon: 5\nweights:\n  goal: 1.0\n  suction: 20.0\n",
    "image_size: 64\nenc_channels: [8, 8, 8, 8]\nlatent_dim: 8\n",
]
CRAFTED = [
    # billion laughs: aliases that expand exponentially
    "a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "keepout_boxes: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
    "keepout_boxes: " + "[" * 3000 + "]" * 3000 + "\n",
    "n_objects: " + "9" * 5000 + "\n",
    "n_objects: 2024-13-45\n",
    "max_episode_s: 2001-02-29 10:00:00\n",
    "n_objects: !!python/object/apply:os.system ['touch /tmp/wm_fuzz_pwned']\n",
    "n_objects: !!binary aGVsbG8=\n",
    "n_objects: !!set {a, b}\n",
    "? [1, 2]\n: 3\n",
    "--- 1\n--- 2\n",
    "n_objects: 3\nn_objects: 4\n",
    "&x a: *x\n",
    "",
    "\ufeffn_objects: 3\n",
    "n_objects: .nan\n",
    "max_episode_s: .inf\n",
    "n_objects: 3.0\n",
    "n_objects: 3.5\n",
    "render_images: 1\n",
    "n_objects: true\n",
]


def yaml_texts() -> st.SearchStrategy:
    return st.tuples(st.sampled_from(CLASSES), hostile_bytes(tuple(VALID_TEXT)))


@st.composite
def hostile_bytes(draw, valid: tuple[str, ...]) -> bytes:
    """Random bytes or text, a crafted document, or one of ``valid`` mutated byte-wise."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        payload = draw(st.binary(max_size=300))
    elif kind == 1:
        payload = draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
    elif kind == 2:
        payload = draw(st.sampled_from(CRAFTED)).encode()
    else:  # a valid document, mutated
        base = bytearray(draw(st.sampled_from(valid)).encode())
        for _ in range(draw(st.integers(1, 6))):
            op = draw(st.integers(0, 2))
            pos = draw(st.integers(0, len(base)))
            if op == 0 and base:
                del base[min(pos, len(base) - 1)]
            elif op == 1:
                base[pos:pos] = draw(
                    st.sampled_from(
                        [
                            b":",
                            b"[",
                            b"]",
                            b"{",
                            b"-",
                            b"\t",
                            b"&a",
                            b"*a",
                            b"!!",
                            b"\n  ",
                            b"'",
                            b'"',
                            b"\x00",
                            b"\xff",
                            b"%",
                        ]
                    )
                )
            else:
                base[pos:pos] = str(draw(numbers)).encode()[:50]
        payload = bytes(base)
    return payload


def check_text(case) -> None:
    cls, payload = case
    well_typed(load_yaml(cls, _yaml_file(payload)))


# ---------------------------------------------------------------------- the work-cell file
CELL_PATHS = [
    ("name",),
    ("workspace_lo",),
    ("workspace_hi",),
    ("keepout_boxes",),
    ("obstacle_boxes",),
    *(("table", k) for k in ("x", "y", "top_z", "thickness", "colour")),
    *(("bin", k) for k in ("center", "inner_half", "wall_thickness", "wall_height")),
    *(("arm", k) for k in ("joint_names", "home_q", "base_xyz", "base_rpy")),
    *(("camera", k) for k in ("width", "height", "K", "D", "T_world_cam", "distortion_model")),
    ("table",),
    ("camera",),
    ("unknown_field",),
]
HOSTILE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=20,
)


def cell_documents() -> st.SearchStrategy:
    """The sim cell's mapping with 1-3 fields (or whole parts) replaced by hostile values."""
    return st.lists(st.tuples(st.sampled_from(CELL_PATHS), HOSTILE), min_size=1, max_size=3)


def check_cell(changes) -> None:
    import copy

    import yaml

    from wm_core.cell import SIM_CELL_FILE, Workcell, cell_from_mapping

    data = copy.deepcopy(yaml.safe_load(SIM_CELL_FILE.read_text()))
    for path, value in changes:
        node = data
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(node, dict) else node
        if isinstance(node, dict):
            node[path[-1]] = value
    cell = cell_from_mapping(data, "cell.yaml")
    assert isinstance(cell, Workcell)


def check_cell_text(payload: bytes) -> None:
    """A cell *file* (``load_cell``): bytes that are not UTF-8, deep nesting, bad YAML."""
    from wm_core.cell import Workcell, load_cell

    assert isinstance(load_cell(_yaml_file(payload)), Workcell)


TARGETS = [
    Target(
        "config.scene_yaml",
        st.tuples(st.just(SceneConfig), documents(SceneConfig)),
        check_document,
        (ConfigError,),
        quick=100,
    ),
    Target(
        "config.other_yaml",
        st.sampled_from(OTHER_CLASSES).flatmap(lambda c: st.tuples(st.just(c), documents(c))),
        check_document,
        (ConfigError,),
        quick=100,
    ),
    Target("config.yaml_text", yaml_texts(), check_text, (ConfigError,), quick=300),
    Target("config.cell_yaml", cell_documents(), check_cell, (ConfigError,), quick=300),
    Target(
        "config.cell_file_text",
        hostile_bytes(tuple(p.read_text() for p in (SIM_CELL_FILE, PYBULLET_CELL_FILE))),
        check_cell_text,
        (ConfigError,),
        quick=200,
    ),
]


test_fuzz, test_fuzz_10k = fuzz_tests(TARGETS)


def test_crafted_documents_are_clean_errors(tmp_path):
    """The hand-made hostile documents, each named: a ConfigError of one line, quickly."""
    for i, text in enumerate(CRAFTED):
        path = tmp_path / f"c{i}.yaml"
        path.write_text(text)
        try:
            cfg = load_yaml(SceneConfig, path)
        except ConfigError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc), text[:40]
        else:
            well_typed(cfg)
    assert not Path("/tmp/wm_fuzz_pwned").exists()


def test_specific_hostile_values_name_the_field(tmp_path):
    cases = {
        # keep-out boxes are the work cell's (tests/wm_core/test_cell.py), not the scene's
        "keepout_boxes: 5\n": r"unknown field\(s\) \['keepout_boxes'\]",
        "n_objects: '3'\n": "n_objects",
        "light_jitter: null\n": "light_jitter",
        "render_images: 1\n": "render_images",
        "1: 2\n": "field names must be strings",
        "[1, 2]\n": "expected a mapping",
        "n_objects: 2024-13-45\n": "not valid YAML",
        "n_objects: " + "9" * 5000 + "\n": "not valid YAML",
        "keepout_boxes: " + "[" * 3000 + "]" * 3000 + "\n": "nested too deeply",
    }
    for text, match in cases.items():
        path = tmp_path / "c.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=match):
            load_yaml(SceneConfig, path)
    path = tmp_path / "c.yaml"
    path.write_bytes(b"n_objects: \xff\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_yaml(SceneConfig, path)
    # an integral float is an int; nested planner weights load as CostWeights
    path.write_text("n_objects: 4.0\n")
    assert load_yaml(SceneConfig, path).n_objects == 4
    path.write_text("weights: {goal: 2}\nhorizon: 6\n")
    cfg = load_yaml(PlannerConfig, path)
    assert cfg.weights == CostWeights(goal=2.0) and cfg.horizon == 6
