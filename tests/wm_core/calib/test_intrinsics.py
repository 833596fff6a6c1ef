"""Intrinsics from synthetic corner observations with a known camera (projectPoints + noise)."""

import numpy as np
import pytest

from wm_core.calib.boards import BoardSpec
from wm_core.calib.intrinsics import MIN_IMAGES, CalibrationError, CameraIntrinsics, calibrate
from wm_core.calib.synthetic import DEFAULT_D, DEFAULT_K, DEFAULT_SIZE, board_views, project_views
from wm_core.config import ConfigError

NOISE_PX = 0.2  # standard deviation per image axis
VIEWS = 15


def _calibrate(board, seed, n=VIEWS):
    rng = np.random.default_rng(seed)
    poses = board_views(board, DEFAULT_K, DEFAULT_SIZE, n, rng)
    dets = project_views(board, DEFAULT_K, DEFAULT_D, poses, NOISE_PX, rng)
    return calibrate(dets, DEFAULT_SIZE, camera_name="synthetic"), poses


@pytest.mark.parametrize(
    "board",
    [BoardSpec("chessboard", 9, 6, 0.03), BoardSpec("charuco", 8, 6, 0.035, 0.026)],
    ids=["chessboard", "charuco"],
)
@pytest.mark.parametrize("seed", range(5))
def test_focal_within_half_percent_and_rms_at_noise_floor(board, seed):
    res, poses = _calibrate(board, seed)
    K = res.intrinsics.K
    f_err = max(abs(K[0, 0] / DEFAULT_K[0, 0] - 1), abs(K[1, 1] / DEFAULT_K[1, 1] - 1))
    assert f_err < 0.005, f"focal error {100 * f_err:.3f} %"
    assert abs(K[0, 2] - DEFAULT_K[0, 2]) < 4 and abs(K[1, 2] - DEFAULT_K[1, 2]) < 4
    # 2-D RMS of N(0, 0.2 px) per axis is 0.2 * sqrt(2) = 0.28 px; the fit reaches it
    assert 0.2 < res.rms <= 0.3
    assert len(res.per_image_rms) == VIEWS and max(res.per_image_rms) < 0.4
    assert res.intrinsics.D.shape == (5,) and res.intrinsics.size == DEFAULT_SIZE
    # the per-view board poses come back too
    pairs = zip(res.T_cam_board, poses, strict=True)
    dt = [np.linalg.norm(a[:3, 3] - b[:3, 3]) for a, b in pairs]
    assert max(dt) < 0.005


def test_noise_free_observations_recover_the_camera_exactly():
    board = BoardSpec("chessboard", 9, 6, 0.03)
    rng = np.random.default_rng(0)
    poses = board_views(board, DEFAULT_K, DEFAULT_SIZE, 10, rng)
    res = calibrate(project_views(board, DEFAULT_K, DEFAULT_D, poses, 0.0, rng), DEFAULT_SIZE)
    assert np.allclose(res.intrinsics.K, DEFAULT_K, rtol=1e-5, atol=1e-3)
    assert np.allclose(res.intrinsics.D, DEFAULT_D, atol=1e-4)
    assert res.rms < 1e-3


def test_too_few_views_is_an_error():
    board = BoardSpec("chessboard", 9, 6, 0.03)
    rng = np.random.default_rng(0)
    poses = board_views(board, DEFAULT_K, DEFAULT_SIZE, MIN_IMAGES - 1, rng)
    dets = project_views(board, DEFAULT_K, DEFAULT_D, poses, 0.2, rng)
    with pytest.raises(CalibrationError, match=f"4 views with a board; .* at least {MIN_IMAGES}"):
        calibrate(dets, DEFAULT_SIZE)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"K": np.diag([-600.0, 600.0, 1.0])}, "focal lengths fx=-600, fy=600 must be > 0"),
        ({"K": np.full((3, 3), np.nan)}, "K must be a finite 3x3"),
        ({"D": np.zeros(4)}, "D must be 5 finite plumb_bob"),
        ({"width": 0}, "width=0 must be a positive integer"),
        ({"name": ""}, "camera name=''"),
    ],
)
def test_camera_intrinsics_validation(kwargs, needle):
    args = {"name": "cam", "width": 640, "height": 480, "K": DEFAULT_K, "D": np.zeros(5)}
    args.update(kwargs)
    with pytest.raises(ConfigError) as err:
        CameraIntrinsics(**args)
    assert needle in str(err.value)
