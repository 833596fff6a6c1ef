"""The calibration path in the simulator: board on the tool, sweep, hand-eye -> a cell."""

import dataclasses

import numpy as np
import pytest

from wm_core.cell import load_cell, sim_cell, write_cell
from wm_core.cli import main
from wm_core.sim import SceneConfig, TableClearingEnv
from wm_core.sim.calibration import calibrate_camera


def rotation_deg(a: np.ndarray, b: np.ndarray) -> float:
    c = (np.trace(a[:3, :3].T @ b[:3, :3]) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(c, -1, 1))))


def test_the_sweep_recovers_a_jittered_camera():
    cfg = SceneConfig(camera_jitter_deg=3.0, light_jitter=0.3)
    cal = calibrate_camera(cfg, 130_000)
    env = TableClearingEnv(dataclasses.replace(cfg, render_images=False))
    env.reset(130_000)
    truth = env.camera_info().T_world_cam
    env.close()
    nominal_error = rotation_deg(sim_cell().camera.pose, truth)
    assert nominal_error > 0.5  # the jitter moved the camera: the nominal pose is wrong
    assert cal.views >= 10
    assert cal.error_translation_mm < 10.0 and cal.error_rotation_deg < 0.5, cal.summary()
    assert rotation_deg(cal.cell.camera.pose, truth) == pytest.approx(cal.error_rotation_deg)
    assert cal.error_rotation_deg < nominal_error / 3
    assert cal.cell.table == sim_cell().table  # only the camera changed


def test_a_written_cell_reads_back_the_same(tmp_path):
    path = write_cell(sim_cell(), tmp_path / "cell.yaml", header="a test")
    assert path.read_text().startswith("# a test\n")
    assert load_cell(path) == sim_cell()


def test_wm_calibrate_sim_writes_a_cell_and_eval_refuses_calibrate_for_others(tmp_path, capsys):
    out = tmp_path / "cell.yaml"
    argv = ["calibrate", "sim", "--seed", "3", "--camera-jitter", "2", "--poses", "10"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "pose error against the simulator" in capsys.readouterr().out
    assert load_cell(out).camera.pose.shape == (4, 4)
    assert main(["calibrate", "sim", "--seed", "-1", "--out", str(out)]) == 2
    assert "--seed -1 must be >= 0" in capsys.readouterr().err
    evargs = ["eval", "--policy", "oracle", "--calibrate", "--out", str(tmp_path / "e")]
    assert main(evargs) == 2
    err = capsys.readouterr().err
    assert "--calibrate is for --policy latent-mpc" in err and err.count("\n") == 1
