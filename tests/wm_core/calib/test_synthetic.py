import cv2
import numpy as np
import pytest

from wm_core.calib.boards import BoardSpec, detect_board
from wm_core.calib.synthetic import (
    DEFAULT_K,
    DEFAULT_SIZE,
    board_image,
    board_outline,
    board_views,
    handeye_problem,
    look_at,
    render_view,
)
from wm_core.calib.transforms import inv_T, is_rigid, make_T, rot_exp


def test_look_at_is_an_optical_frame():
    T = look_at([1.0, 0.0, 1.0], [0.0, 0.0, 0.0])
    assert is_rigid(T)
    assert np.allclose(T[:3, 2], np.array([-1.0, 0.0, -1.0]) / np.sqrt(2))  # z forward
    assert T[2, 1] < 0  # image down points down in the world


def test_views_keep_the_board_in_the_image():
    board = BoardSpec("chessboard", 9, 6, 0.03)
    poses = board_views(board, DEFAULT_K, DEFAULT_SIZE, 6, np.random.default_rng(0))
    for T in poses:
        pts = (T[:3, :3] @ board_outline(board).T).T + T[:3, 3]
        uv = (DEFAULT_K @ (pts / pts[:, 2:]).T).T
        assert np.all((uv[:, 0] > 0) & (uv[:, 0] < 640) & (uv[:, 1] > 0) & (uv[:, 1] < 480))


@pytest.mark.parametrize(
    "board",
    [BoardSpec("chessboard", 9, 6, 0.03), BoardSpec("charuco", 8, 6, 0.035, 0.026)],
    ids=["chessboard", "charuco"],
)
def test_rendered_corners_land_where_projected(board):
    T = make_T(rot_exp([0.3, -0.2, 0.1]), [-0.12, -0.08, 0.55])  # T_cam_board
    img = render_view(board_image(board), DEFAULT_K, T, DEFAULT_SIZE)
    assert img.shape == (480, 640)
    det = detect_board(img, board)
    rvec, _ = cv2.Rodrigues(T[:3, :3])
    uv, _ = cv2.projectPoints(det.object_points.astype(float), rvec, T[:3, 3], DEFAULT_K, None)
    diff = uv.reshape(-1, 2) - det.image_points  # [N, 2]
    # no bias: the print-to-image mapping is exact (a half-pixel slip would show here) ...
    assert np.all(np.abs(diff.mean(axis=0)) < 0.06), diff.mean(axis=0)
    # ... and the detector's own scatter on the rendered image is sub-pixel
    assert np.sqrt(np.mean(np.sum(diff**2, axis=1))) < 0.4


def test_handeye_problem_is_consistent_without_noise():
    for mode in ("eye-to-hand", "eye-in-hand"):
        p = handeye_problem(6, 0, mode=mode, noise_mm=0.0, noise_deg=0.0)
        G = inv_T(p.T_base_tool) if mode == "eye-to-hand" else p.T_base_tool
        Y = G @ p.X @ p.T_cam_board
        assert np.allclose(Y, p.T_fixed, atol=1e-12)
        assert np.all(p.T_cam_board[:, 2, 3] > 0)  # board in front of the camera
