"""wm eval's episode-0 media: the annotated video (default), raw, none, and the rerun file."""

from __future__ import annotations

import json

import pytest

from wm_core.cli import main
from wm_core.eval.runner import evaluate
from wm_core.sim import SceneConfig

SHORT = SceneConfig(n_objects=1, max_episode_s=2.0)


def frames_of(path) -> int:
    iio = pytest.importorskip("imageio.v2")
    return sum(1 for _ in iio.get_reader(path))


def test_latent_mpc_annotated_video_and_rerun(tmp_path):
    pytest.importorskip("rerun")
    from wm_core.viz.rerun_log import entity_paths

    rrd = tmp_path / "ep0.rrd"
    r = evaluate("latent-mpc", 1, 7, SHORT, tmp_path, progress=False, rerun=rrd)
    steps = round(r["mean_episode_sim_s"] * r["control_hz"])
    assert r["video_mode"] == "annotated" and r["video_size"] == [1024, 640]  # camera + render
    assert r["video_frames"] == steps == frames_of(tmp_path / "episode0.mp4")
    paths = entity_paths(rrd)
    assert paths["world/detections"] == steps and paths["safety/verdict"] == steps
    assert paths["plan/cost/total"] >= 1 and paths["world/tool/planned"] == steps
    assert json.loads((tmp_path / "report.json").read_text())["rerun"] == str(rrd)


@pytest.mark.parametrize("mode", ["raw", "none"])
def test_raw_and_none(tmp_path, mode):
    r = evaluate("oracle", 1, 3, SHORT, tmp_path, video=mode, progress=False)
    if mode == "raw":
        assert r["video_mode"] == "raw" and "video_size" not in r
        assert frames_of(tmp_path / "episode0.mp4") >= 2
    else:
        assert "video" not in r and not (tmp_path / "episode0.mp4").exists()


def test_oracle_annotated_has_the_render_panel_only(tmp_path):
    r = evaluate("oracle", 1, 3, SHORT, tmp_path, progress=False)
    assert r["video_size"] == [512, 640]  # no policy camera: the render for people only


def test_bad_video_mode_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(ValueError, match="video='x' must be one of"):
        evaluate("oracle", 1, 3, SHORT, tmp_path, video="x", progress=False)
    out = str(tmp_path / "out")
    with pytest.raises(SystemExit) as exc:  # argparse's choices: one line, exit 2
        main(["eval", "--policy", "oracle", "--out", out, "--video", "x"])
    assert exc.value.code == 2 and "invalid choice: 'x'" in capsys.readouterr().err
    assert main(["eval", "--policy", "oracle", "--out", out, "--rerun", f"{out}/a.mp4"]) == 2
    err = capsys.readouterr().err
    assert "must name a .rrd file" in err and err.count("\n") == 1
