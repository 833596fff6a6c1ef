"""The two bounds of the benchmark: the privileged oracle and the random policy."""

import pytest

from wm_core.eval.runner import evaluate
from wm_core.sim import SceneConfig


def test_oracle_clears_at_least_95_percent_with_zero_safety_events(tmp_path):
    report = evaluate(
        "oracle", 20, 100, SceneConfig(n_objects=3), tmp_path, video="none", progress=False
    )
    assert report["episodes"] == 20 and report["objects_total"] == 60
    assert report["clear_rate"] >= 0.95, report["per_episode"]
    assert report["safety_violations_total"] == 0, report["safety_violations"]


def test_random_clears_at_most_10_percent(tmp_path):
    report = evaluate(
        "random", 4, 100, SceneConfig(n_objects=3), tmp_path, video="none", progress=False
    )
    assert report["objects_total"] == 12
    assert report["clear_rate"] <= 0.10


@pytest.mark.slow
def test_oracle_handles_one_to_six_objects_and_jitter(tmp_path):
    for k in (1, 6):
        cfg = SceneConfig(n_objects=k, camera_jitter_deg=3, light_jitter=0.3)
        report = evaluate("oracle", 5, 200, cfg, tmp_path, video="none", progress=False)
        assert report["clear_rate"] >= 0.9 and report["safety_violations_total"] == 0
