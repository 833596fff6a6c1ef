import json

from wm_core.eval.compare import BEGIN, END, compare
from wm_core.sim import SceneConfig


def test_compare_writes_table_chart_reports_and_readme_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\nold table\n{END}\noutro\n")
    cfg = SceneConfig(n_objects=1, max_episode_s=3.0)
    rows = compare(
        ["oracle", "random"],
        1,
        7,
        cfg,
        tmp_path / "cmp",
        video="none",
        progress=False,
        readme=readme,
    )
    out = tmp_path / "cmp"
    assert set(rows) == {"oracle", "random"}
    for name in rows:
        r = json.loads((out / name / "report.json").read_text())
        assert r["seed"] == 7 and r["episodes"] == 1  # same seeds for every entry
    table = (out / "compare.md").read_text()
    assert "| oracle |" in table and "| random |" in table
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"
    doc = readme.read_text()
    assert "old table" not in doc and "| oracle |" in doc and doc.endswith("outro\n")


def test_a_finished_entry_is_reused_only_when_code_and_models_match(tmp_path, monkeypatch):
    """An interrupted compare resumes: a report made with the same settings and the same code
    stamp is reused; one from other code (another stamp) is run again."""
    import wm_core.eval.compare as cmp

    cfg = SceneConfig(n_objects=1, max_episode_s=2.0)
    out = tmp_path / "cmp"
    args = (["random"], 1, 3, cfg, out)
    cmp.compare(*args, video="none", progress=False)
    report = out / "random" / "report.json"
    marked = json.loads(report.read_text()) | {"marker": 1}
    report.write_text(json.dumps(marked))
    assert cmp.compare(*args, video="none", progress=False)["random"].get("marker") == 1
    monkeypatch.setattr(cmp, "code_stamp", lambda: "other code")
    assert "marker" not in cmp.compare(*args, video="none", progress=False)["random"]
    assert json.loads((out / "random" / cmp.STAMP).read_text()) == {"code": "other code"}
