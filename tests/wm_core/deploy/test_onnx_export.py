"""wm export --format onnx: checked graphs, a manifest read back from the files, parity."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from wm_core.deploy.onnx_export import (  # noqa: E402
    GRAPHS,
    PARITY_TOL,
    ExportError,
    load_manifest,
    sha256,
)


def test_export_writes_checked_graphs_and_a_truthful_manifest(tiny_exported):
    d = tiny_exported / "onnx"
    m = json.loads((d / "manifest.json").read_text())
    assert m["checkpoint_sha256"] == sha256(tiny_exported / "model.pt")
    assert m["opset"] == 18
    for g in GRAPHS:
        path = d / m["graphs"][g]["file"]
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)
        assert m["graphs"][g]["sha256"] == sha256(path)
        assert (d / m["graphs"][g]["fp16"]["file"]).is_file()
        for io in (*m["graphs"][g]["inputs"], *m["graphs"][g]["outputs"]):
            assert io["dtype"] == "float32"
            assert isinstance(io["shape"][0], str), f"{g}.{io['name']}: batch must be dynamic"
    pred = m["graphs"]["predictor"]
    assert [i["name"] for i in pred["inputs"]] == ["z", "p", "a"]
    assert pred["inputs"][0]["shape"][1:] == [16, 8]  # N = 4x4 patches, D = 8
    assert [o["name"] for o in pred["outputs"]] == ["z_next", "p_next"]
    enc = m["graphs"]["encoder"]
    assert enc["inputs"][0]["shape"][1:] == [3, 64, 64]
    for g in GRAPHS:
        assert 0 <= m["parity"][g]["max_abs_err"] <= PARITY_TOL
    assert max(m["parity"]["predictor"]["batches"]) >= 128  # the planner's candidate batch


@pytest.mark.parametrize("name", ["default", "randomised"])
def test_the_shipped_export_belongs_to_the_shipped_checkpoint(name):
    model_dir = Path(__file__).resolve().parents[3] / "models" / name
    m = load_manifest(model_dir / "onnx")  # hashes of the graphs checked
    assert m["checkpoint_sha256"] == sha256(model_dir / "model.pt"), (
        f"models/{name}/onnx is stale: wm export --checkpoint models/{name}/model.pt "
        f"--format onnx --out models/{name}/onnx"
    )
    assert all(m["parity"][g]["max_abs_err"] <= PARITY_TOL for g in GRAPHS)


def test_a_changed_or_missing_graph_is_refused(tiny_exported, tmp_path):
    d = tmp_path / "onnx"
    shutil.copytree(tiny_exported / "onnx", d)
    with open(d / "proprio.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ExportError, match="proprio.onnx does not match the sha256"):
        load_manifest(d)
    (d / "encoder.onnx").unlink()
    with pytest.raises(ExportError, match="encoder.onnx does not exist"):
        load_manifest(d)
    (d / "manifest.json").write_text("{not json")
    with pytest.raises(ExportError, match="not an export manifest"):
        load_manifest(d)
    with pytest.raises(ExportError, match="manifest.json does not exist"):
        load_manifest(tmp_path)


def test_the_cli_exports_and_reports_parity(tiny_exported, tmp_path, capsys):
    from wm_core.cli import main

    ckpt = str(tiny_exported / "model.pt")
    assert main(["export", "--checkpoint", ckpt, "--format", "onnx", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "encoder.onnx, predictor.onnx, proprio.onnx" in out and "tolerance 0.0001" in out
    m = load_manifest(tmp_path)
    assert m["checkpoint_sha256"] == sha256(tiny_exported / "model.pt")
    missing = str(tmp_path / "nope.pt")
    assert main(["export", "--checkpoint", missing, "--format", "onnx", "--out", "x"]) == 2
    assert "does not exist" in capsys.readouterr().err
