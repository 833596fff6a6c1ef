"""No output path built from a data-controlled name escapes its ``--out`` directory."""

from __future__ import annotations

import json
import os

import pytest
from fuzzlib import Target, quick_cases, run_target
from hypothesis import strategies as st

from wm_core.paths import PathEscapeError, inside


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "../../etc/passwd",
        "a/../../x",
        "..",
        "/etc/passwd",
        "/tmp/x",
        "",
        "a\0b",
        "~/x",
        "sub/../../x",
    ],
)
def test_escaping_names_are_refused(tmp_path, name):
    with pytest.raises(PathEscapeError, match="not a plain relative name|resolves outside"):
        inside(tmp_path, name)


@pytest.mark.parametrize("name", ["report.json", "a/b.json", ".._0000.npz", "x..y", ".hidden"])
def test_plain_names_stay_inside(tmp_path, name):
    path = inside(tmp_path, name)
    assert path == tmp_path / name
    assert path.resolve().is_relative_to(tmp_path.resolve())


def test_a_symlink_out_of_the_directory_is_refused(tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "link").symlink_to(elsewhere)
    with pytest.raises(PathEscapeError, match="resolves outside"):
        inside(out, "link/report.json")


def check_name(case) -> None:
    out, name = case
    path = inside(out, name)
    assert os.path.realpath(path).startswith(os.path.realpath(out) + os.sep)


NAMES = st.lists(
    st.one_of(
        st.sampled_from(["..", ".", "", "/", "~", "a", "\0", "//", "\\..", "..."]),
        st.text(max_size=6),
    ),
    max_size=6,
).map("/".join)
TARGETS = [
    Target(
        "paths.inside",
        st.tuples(st.just("/tmp/wm_fuzz_paths_out"), NAMES),
        check_name,
        (PathEscapeError,),
        quick=300,
    )
]


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_fuzz(target):
    run_target(target, quick_cases(target), derandomize=True)


def test_import_bag_summary_name_stays_in_out(tmp_path, monkeypatch):
    """``wm import-bag`` names its summary after the bag directory: a bag called '..' (or
    given as '/') writes inside --out, never beside it."""
    from wm_core import cli
    from wm_core.data import bag_import

    def fake_import(bag, out, topics, cfg, **labels):
        return {"steps": 1, "shards": 1, "dropped_frames": 0, "dropped_at_resets": 0} | {
            "action_source": "command"
        }

    monkeypatch.setattr(bag_import, "import_bag", fake_import)
    out = tmp_path / "a" / "out"
    for bag in ("..", "/", str(tmp_path / "rec")):
        assert cli.main(["import-bag", bag, "--out", str(out)]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == ["import_...json", "import_.json", "import_rec.json"]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["out"]
    assert json.loads((out / "import_rec.json").read_text())["steps"] == 1
