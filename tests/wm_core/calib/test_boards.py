"""Board geometry, detection and board_pose on rendered images with a known pose."""

import numpy as np
import pytest

from wm_core.calib.boards import BoardSpec, board_pose, detect_board
from wm_core.calib.synthetic import (
    DEFAULT_K,
    DEFAULT_SIZE,
    board_image,
    board_views,
    pose_error,
    render_view,
)
from wm_core.calib.transforms import make_T, rot_exp
from wm_core.config import ConfigError

CHESS = BoardSpec("chessboard", 9, 6, 0.03)
CHARUCO = BoardSpec("charuco", 8, 6, 0.035, 0.026)
NO_DIST = np.zeros(5)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"kind": "grid", "cols": 9, "rows": 6, "square": 0.03}, "board='grid' must be one of"),
        ({"kind": "chessboard", "cols": 2, "rows": 6, "square": 0.03}, "cols (inner corners)=2"),
        ({"kind": "charuco", "cols": 8, "rows": 6, "square": 0.03}, "needs marker"),
        ({"kind": "charuco", "cols": 8, "rows": 6, "square": 0.03, "marker": 0.03}, "marker (m)"),
        ({"kind": "chessboard", "cols": 9, "rows": 6, "square": 0}, "square (m)=0"),
        (
            {
                "kind": "charuco",
                "cols": 8,
                "rows": 6,
                "square": 0.03,
                "marker": 0.02,
                "dictionary": "DICT_9X9_1",
            },
            "dictionary='DICT_9X9_1' is not an OpenCV ArUco dictionary",
        ),
        (
            {"kind": "charuco", "cols": 12, "rows": 12, "square": 0.03, "marker": 0.02},
            "needs 72 markers but dictionary=DICT_4X4_50 has 50",
        ),
    ],
)
def test_board_spec_rejects_bad_values(kwargs, needle):
    with pytest.raises(ConfigError) as err:
        BoardSpec(**kwargs)
    assert needle in str(err.value)


def test_chessboard_object_points_row_by_row():
    pts = CHESS.object_points()
    assert pts.shape == (54, 3)
    assert np.allclose(pts[1], [0.03, 0, 0]) and np.allclose(pts[9], [0, 0.03, 0])
    assert np.allclose(pts[-1], [8 * 0.03, 5 * 0.03, 0])
    assert CHARUCO.object_points().shape == (7 * 5, 3)


@pytest.mark.parametrize("board", [CHESS, CHARUCO], ids=["chessboard", "charuco"])
def test_board_pose_from_rendered_images(board):
    rng = np.random.default_rng(3)
    printed = board_image(board)
    errors = []
    for T in board_views(board, DEFAULT_K, DEFAULT_SIZE, 5, rng):
        image = render_view(printed, DEFAULT_K, T, DEFAULT_SIZE)
        T_est, n = board_pose(image, board, DEFAULT_K, NO_DIST)
        assert T_est is not None
        assert n == len(board.object_points())
        errors.append(pose_error(T_est, T))
    errors = np.array(errors)
    assert errors[:, 0].max() < 1.0, errors  # mm
    assert errors[:, 1].max() < 0.3, errors  # deg


def test_charuco_partial_view_still_gives_a_pose():
    # board 0.5 m ahead, shifted so that its left part leaves the image
    T = make_T(rot_exp([0.2, -0.1, 0.0]), [-0.35, -0.08, 0.5])
    image = render_view(board_image(CHARUCO), DEFAULT_K, T, DEFAULT_SIZE)
    T_est, n = board_pose(image, CHARUCO, DEFAULT_K, NO_DIST)
    assert 6 <= n < len(CHARUCO.object_points())
    dt, dr = pose_error(T_est, T)
    assert dt < 2.0 and dr < 0.5


def test_no_board_in_image():
    blank = np.full((480, 640), 128, np.uint8)
    assert detect_board(blank, CHESS) is None
    assert board_pose(blank, CHARUCO, DEFAULT_K, NO_DIST) == (None, 0)
    bgr = np.zeros((480, 640, 3), np.uint8)
    assert detect_board(bgr, CHESS) is None
