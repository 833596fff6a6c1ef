import json
import subprocess
import sys

import pytest

from wm_core.eval.policies import available_policies, register_policy

REQUIRED = {
    "policy": str,
    "episodes": int,
    "seed": int,
    "objects_per_episode": int,
    "objects_total": int,
    "objects_cleared": int,
    "clear_rate": float,
    "full_clear_rate": float,
    "objects_dropped": int,
    "safety_violations": dict,
    "safety_violations_total": int,
    "mean_episode_sim_s": float,
    "control_hz": float,
    "step_latency_ms_p50": float,
    "step_latency_ms_p99": float,
}


def wm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wm_core.cli", *args], capture_output=True, text=True, timeout=600
    )


def test_eval_writes_report_video_and_summary(tmp_path):
    r = wm(
        "eval",
        "--policy",
        "oracle",
        "--episodes",
        "1",
        "--seed",
        "3",
        "--objects",
        "1",
        "--out",
        str(tmp_path),
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    for key, typ in REQUIRED.items():
        assert isinstance(report[key], typ), (key, report[key])
    assert report["policy"] == "oracle" and report["seed"] == 3
    assert report["objects_total"] == 1 and report["objects_cleared"] == 1
    assert set(report["safety_violations"]) == {
        "arm_table_collision",
        "arm_bin_collision",
        "joint_position_limit",
        "joint_velocity_limit",
        "tool_speed",
        "keepout_entry",
    }
    assert (tmp_path / "episode0.mp4").stat().st_size > 10_000
    assert "cleared" in r.stdout and "1/1" in r.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--policy", "nope"], "'nope' unknown; choose one of ['latent-mpc', 'oracle', 'random']"),
        (["--policy", "oracle", "--objects", "7"], "n_objects=7 must be an integer in [1, 6]"),
        (["--policy", "oracle", "--objects", "0"], "n_objects=0"),
        (["--policy", "oracle", "--episodes", "-3"], "--episodes -3 must be >= 1"),
        (["--policy", "oracle", "--light-jitter", "2"], "light_jitter=2.0"),
        (["--policy", "oracle", "--objects", "x"], "invalid int value: 'x'"),
        (
            ["--policy", "oracle", "--planner", "cem"],
            "['planner'] only apply to --policy latent-mpc",
        ),
        (
            ["--policy", "oracle", "--no-verify-done"],
            "['verify_done'] only apply to --policy latent-mpc",
        ),
        (["--policy", "latent-mpc", "--planner", "anneal"], "optimizer='anneal' must be one of"),
        (["--policy", "latent-mpc", "--samples", "1"], "samples=1 must be an integer"),
        (["--policy", "latent-mpc", "--world-model", "x"], "--world-model 'x' must be one of"),
        (["--policy", "latent-mpc", "--model", "/nonexistent"], "/nonexistent/model.pt does not"),
    ],
)
def test_bad_arguments_one_line_exit_2(tmp_path, args, needle):
    r = wm("eval", *args, "--out", str(tmp_path))
    assert r.returncode == 2
    assert needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_unwritable_out_and_malformed_scene_config(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = wm("eval", "--policy", "oracle", "--out", str(blocker / "sub"))
    assert r.returncode == 2 and "not a writable directory" in r.stderr
    bad = tmp_path / "scene.yaml"
    bad.write_text("n_objects: [1\n")
    r = wm("eval", "--policy", "oracle", "--out", str(tmp_path), "--scene-config", str(bad))
    assert r.returncode == 2 and "not valid YAML" in r.stderr
    bad.write_text("n_objects: 3\nsuction_gain: -1\n")
    r = wm("eval", "--policy", "oracle", "--out", str(tmp_path), "--scene-config", str(bad))
    assert r.returncode == 2 and "suction_gain=-1.0 must be a number in [0.0, 500.0]" in r.stderr
    assert "Traceback" not in r.stderr


def test_policy_registry_is_open():
    @register_policy("test-still")
    class Still:
        privileged = False
        needs_images = False

        def __init__(self, cfg, cell):
            pass

    assert "test-still" in available_policies()


def test_markdown_table_from_reports():
    from wm_core.eval.markdown import reports_to_markdown

    rep = {
        "policy": "oracle",
        "episodes": 2,
        "objects_per_episode": 3,
        "clear_rate": 1.0,
        "full_clear_rate": 1.0,
        "objects_dropped": 0,
        "safety_violations_total": 1,
        "mean_episode_sim_s": 28.5,
        "step_latency_ms_p50": 6.0,
        "step_latency_ms_p99": 9.0,
        "safety_violations": {"tool_speed": 1, "keepout_entry": 0},
    }
    md = reports_to_markdown([rep])
    assert "| oracle | 2 | 3 | 1.000 | 1.00 | 0 | 1 | 28.5 | 6.00 | 9.00 |" in md
    assert "{'tool_speed': 1}" in md
