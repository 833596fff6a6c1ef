"""Golden test: the shipped model's encoder and predictor outputs on a fixed seeded input
must match the values recorded when it was exported (``models/*/golden.json``)."""

import json
from pathlib import Path

import numpy as np
import pytest

from wm_core.models.checkpoint import load_checkpoint
from wm_core.models.export import golden_outputs

MODELS = Path(__file__).resolve().parents[3] / "models"


@pytest.mark.parametrize("name", ["default", "generative", "randomised"])
def test_shipped_model_matches_its_golden_outputs(name):
    d = MODELS / name
    if name != "default" and not (d / "model.pt").is_file():
        pytest.skip(f"no {name} model shipped in models/{name}")
    expected = json.loads((d / "golden.json").read_text())
    got = golden_outputs(load_checkpoint(d / "model.pt"))
    assert got.keys() == expected.keys()
    for k, v in expected.items():
        np.testing.assert_allclose(
            np.asarray(got[k]), np.asarray(v), rtol=1e-4, atol=1e-5, err_msg=k
        )


def test_shipped_models_fit_the_size_budget():
    total = sum(p.stat().st_size for p in MODELS.rglob("*") if p.is_file())
    assert total <= 20e6, f"models/ holds {total / 1e6:.1f} MB, budget 20 MB"
