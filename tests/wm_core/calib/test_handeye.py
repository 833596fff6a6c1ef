"""Hand-eye on synthetic cells with a known camera pose.

Noise on each board observation: 0.5 mm per axis (translation) and 0.05 deg per axis
(rotation), 15 tool poses rotated +-30 deg about each tool axis. calibration/accuracy.py prints
the same figures over 20 seeds.
"""

import logging

import cv2
import numpy as np
import pytest

from wm_core.calib.handeye import (
    METHODS,
    MODES,
    HandEyeSamples,
    calibrate_handeye,
    constant_transforms,
    motion_warnings,
    residuals,
    results_table,
    solve,
)
from wm_core.calib.synthetic import handeye_problem, pose_error
from wm_core.calib.transforms import inv_T, make_T, rot_exp
from wm_core.config import ConfigError

TOL_MM, TOL_DEG = 2.0, 0.2


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", METHODS)
def test_every_method_is_exact_without_noise(mode, method):
    p = handeye_problem(8, 1, mode=mode, noise_mm=0.0, noise_deg=0.0)
    X = solve(p.T_base_tool, p.T_cam_board, mode, method)
    dt, dr = pose_error(X, p.X)
    assert dt < 1e-6 and dr < 1e-5
    t_mm, r_deg = residuals(p.T_base_tool, p.T_cam_board, X, mode)
    assert t_mm < 1e-6 and r_deg < 1e-4


@pytest.mark.parametrize("mode", MODES)
def test_noisy_cell_recovers_the_camera_pose(mode):
    for seed in range(5):
        p = handeye_problem(15, seed, mode=mode, noise_mm=0.5, noise_deg=0.05)
        res = calibrate_handeye(HandEyeSamples(p.T_base_tool, p.T_cam_board), mode)
        assert res.warnings == ()
        dt, dr = pose_error(res.best.X, p.X)
        assert dt < TOL_MM and dr < TOL_DEG, (seed, res.best.method, dt, dr)
        # each method individually meets the bound on these seeds too (tsai, park included)
        for r in res.results:
            dt, dr = pose_error(r.X, p.X)
            assert dt < TOL_MM and dr < TOL_DEG, (seed, r.method, dt, dr)
        # residual: the constant transform scatters about as much as the observations
        assert 0.3 < res.best.residual_translation_mm < 2.0
        assert 0.03 < res.best.residual_rotation_deg < 0.15


def test_eye_to_hand_inverts_the_robot_poses():
    # eye-to-hand solves T_base_cam, not T_tool_cam: feeding the solver the raw robot poses
    # (the eye-in-hand convention) must fit the eye-to-hand data far worse.
    p = handeye_problem(12, 2, mode="eye-to-hand", noise_mm=0.0, noise_deg=0.0)
    X = solve(p.T_base_tool, p.T_cam_board, "eye-to-hand", "tsai")
    assert pose_error(X, p.X)[0] < 1e-6
    Y = constant_transforms(p.T_base_tool, p.T_cam_board, X, "eye-to-hand")
    assert np.allclose(Y, p.T_fixed, atol=1e-9)  # = T_tool_board
    wrong = solve(p.T_base_tool, p.T_cam_board, "eye-in-hand", "tsai")
    assert residuals(p.T_base_tool, p.T_cam_board, wrong, "eye-in-hand")[0] > 10.0


def test_residuals_grow_with_a_wrong_camera_pose():
    p = handeye_problem(15, 0, noise_mm=0.5, noise_deg=0.05)
    good = residuals(p.T_base_tool, p.T_cam_board, p.X, "eye-to-hand")
    off = make_T(rot_exp([0.0, 0.0, np.radians(0.5)]), [0.005, 0, 0]) @ p.X
    bad = residuals(p.T_base_tool, p.T_cam_board, off, "eye-to-hand")
    assert bad[0] > 3 * good[0] and bad[1] > 2 * good[1]


@pytest.mark.skipif(not hasattr(cv2, "calibrateHandEye"), reason="no cv2.calibrateHandEye here")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", METHODS)
def test_matches_opencv_calibrate_hand_eye(method, mode):
    # The pinned OpenCV 5 wheel lacks calibrateHandEye; with OpenCV 4.10 this passed for all
    # 10 cases (checked in a separate environment: pytest --noconftest on this file).
    p = handeye_problem(15, 0, mode=mode, noise_mm=0.5, noise_deg=0.05)
    G = inv_T(p.T_base_tool) if mode == "eye-to-hand" else p.T_base_tool
    R, t = cv2.calibrateHandEye(
        list(G[:, :3, :3]),
        list(G[:, :3, 3]),
        list(p.T_cam_board[:, :3, :3]),
        list(p.T_cam_board[:, :3, 3]),
        method=getattr(cv2, f"CALIB_HAND_EYE_{method.upper()}"),
    )
    ours = solve(p.T_base_tool, p.T_cam_board, mode, method)
    dt, dr = pose_error(ours, make_T(R, t.reshape(3)))
    # park, horaud, daniilidis: the same numbers; tsai: ~0.03 mm apart; andreff: the same
    # rotation, but we re-fit t to the orthonormalised rotation where OpenCV keeps the linear t.
    tol_mm = {"tsai": 0.1, "andreff": 3.0}.get(method, 1e-6)
    tol_deg = {"tsai": 0.01}.get(method, 1e-4)  # arccos resolves ~1e-6 deg near 0
    assert dt < tol_mm and dr < tol_deg, (dt, dr)


def test_pure_translations_warn_too_little_rotation(caplog):
    p = handeye_problem(12, 0, rotation="none", noise_mm=0.0, noise_deg=0.0)
    with caplog.at_level(logging.WARNING, logger="wm_core.calib.handeye"):
        res = calibrate_handeye(HandEyeSamples(p.T_base_tool, p.T_cam_board), "eye-to-hand")
    assert any("too little rotation" in w and "0.0 deg" in w for w in res.warnings)
    assert "too little rotation" in caplog.text


@pytest.mark.parametrize("mode", MODES)
def test_rotations_about_one_axis_warn_parallel_axes(mode):
    p = handeye_problem(12, 0, mode=mode, rotation="one-axis", noise_mm=0.0, noise_deg=0.0)
    warns = motion_warnings(p.T_base_tool, mode)
    assert len(warns) == 1 and "near-parallel rotation axes" in warns[0]
    assert motion_warnings(handeye_problem(12, 0, mode=mode).T_base_tool, mode) == []
    # and with it the translation along that axis is lost: the solution is off
    X = solve(p.T_base_tool, p.T_cam_board, mode, "park")
    assert not pose_error(X, p.X)[0] < TOL_MM


def test_few_poses_warn_and_too_few_is_an_error():
    p = handeye_problem(5, 0)
    assert any("only 5 poses" in w for w in motion_warnings(p.T_base_tool))
    assert motion_warnings(handeye_problem(15, 0).T_base_tool) == []
    with pytest.raises(ConfigError, match=r"too few poses \(2\); hand-eye needs at least 3"):
        HandEyeSamples(p.T_base_tool[:2], p.T_cam_board[:2])


def test_bad_mode_and_method_and_table():
    p = handeye_problem(6, 0)
    s = HandEyeSamples(p.T_base_tool, p.T_cam_board)
    with pytest.raises(ConfigError, match="mode='hand-in-eye'"):
        calibrate_handeye(s, "hand-in-eye")
    with pytest.raises(ConfigError, match="choose from"):
        calibrate_handeye(s, "eye-to-hand", ["tsai", "nope"])
    res = calibrate_handeye(s, "eye-to-hand", ["tsai", "park"])
    table = results_table(res)
    assert "tsai" in table and "park" in table and "<- best" in table
    assert inv_T(res.best.X).shape == (4, 4)
