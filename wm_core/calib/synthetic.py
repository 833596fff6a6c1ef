"""Synthetic calibration data with known ground truth (for tests and accuracy figures).

* :func:`board_views` draws board poses a camera sees whole; :func:`project_views` turns them
  into noisy corner observations (``cv2.projectPoints`` + Gaussian pixel noise);
  :func:`render_view` renders a pinhole image of a printed board at a pose (homography warp).
* :func:`handeye_problem` builds an eye-to-hand or eye-in-hand cell with a known camera pose,
  tool poses with chosen rotation variety and noisy board observations.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from wm_core.calib.boards import BoardSpec, Detection, charuco_board
from wm_core.calib.transforms import inv_T, make_T, rot_exp

DEFAULT_K = np.array([[605.0, 0.0, 322.0], [0.0, 600.0, 238.0], [0.0, 0.0, 1.0]])  # [3, 3]
DEFAULT_D = np.array([-0.12, 0.08, 0.0008, -0.0005, 0.0])  # [5]
DEFAULT_SIZE = (640, 480)  # (width, height)


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = (0, 0, 1)) -> np.ndarray:
    """T_world_cam [4, 4] of an OpenCV optical frame at ``eye`` looking at ``target``."""
    eye, target = np.asarray(eye, dtype=float), np.asarray(target, dtype=float)
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, dtype=float))  # image right = forward x up
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("look_at: viewing direction is parallel to up")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)  # image down
    return make_T(np.stack([x, y, z], axis=1), eye)


def _random_rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    return rot_exp(axis * np.radians(rng.uniform(0.3, 1.0) * max_deg))


def board_outline(board: BoardSpec, margin: float = 0.0) -> np.ndarray:
    """Board frame corners [4, 3] of the printed checker area, grown by ``margin`` metres."""
    w, h = board.outer_size
    x0 = y0 = 0.0
    if board.kind == "chessboard":  # inner corner (0, 0) is one square in from the edge
        x0 = y0 = -board.square
    return np.array(
        [
            [x0 - margin, y0 - margin, 0],
            [x0 + w + margin, y0 - margin, 0],
            [x0 + w + margin, y0 + h + margin, 0],
            [x0 - margin, y0 + h + margin, 0],
        ]
    )


def board_views(
    board: BoardSpec,
    K: np.ndarray,
    size: tuple[int, int],
    n: int,
    rng: np.random.Generator,
    *,
    distance: tuple[float, float] = (0.35, 0.65),
    max_tilt_deg: float = 45.0,
    border_px: float = 12.0,
) -> list[np.ndarray]:
    """``n`` poses T_cam_board [4, 4] with the whole board (plus one square of margin) at least
    ``border_px`` inside the image, tilted up to ``max_tilt_deg`` about random axes."""
    w, h = size
    outline = board_outline(board, margin=board.square)
    centre = board_outline(board).mean(axis=0)
    poses: list[np.ndarray] = []
    for _ in range(100 * n):
        if len(poses) == n:
            break
        R = _random_rotation(rng, max_tilt_deg)
        # board normal must face the camera (board z points away from it)
        if (R @ np.array([0.0, 0.0, 1.0]))[2] < 0.3:
            continue
        d = rng.uniform(*distance)
        u, v = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
        ray = np.linalg.solve(K, [u, v, 1.0])
        t = ray / ray[2] * d - R @ centre
        pts = (R @ outline.T).T + t  # [4, 3]
        if np.any(pts[:, 2] <= 0.05):
            continue
        uv = (K @ (pts / pts[:, 2:3]).T).T[:, :2]
        inside = (uv[:, 0] > border_px) & (uv[:, 0] < w - border_px)
        inside &= (uv[:, 1] > border_px) & (uv[:, 1] < h - border_px)
        if inside.all():
            poses.append(make_T(R, t))
    if len(poses) < n:
        raise RuntimeError(f"board_views: found {len(poses)} of {n} views")
    return poses


def project_views(
    board: BoardSpec,
    K: np.ndarray,
    D: np.ndarray,
    poses: list[np.ndarray],
    noise_px: float,
    rng: np.random.Generator,
) -> list[Detection]:
    """Corner observations of every board corner at each pose [4, 4], with Gaussian noise of
    ``noise_px`` (standard deviation per image axis)."""
    obj = board.object_points()  # [N, 3]
    ids = np.arange(len(obj))
    out = []
    for T in poses:
        rvec, _ = cv2.Rodrigues(T[:3, :3])
        uv, _ = cv2.projectPoints(obj.astype(np.float64), rvec, T[:3, 3], K, D)
        uv = uv.reshape(-1, 2) + rng.normal(scale=noise_px, size=(len(obj), 2))  # [N, 2]
        out.append(Detection(uv.astype(np.float32), obj, ids))
    return out


def board_image(board: BoardSpec, px_per_square: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """A printable gray image [H, W] uint8 of the board with a white margin of one square,
    and S [3, 3] mapping board-frame (x, y, 1) metres to that image's pixel (u, v, 1)."""
    p, m = px_per_square, px_per_square  # margin: one square of white
    if board.kind == "chessboard":
        nx, ny = board.cols + 1, board.rows + 1
        j, i = np.mgrid[0:ny, 0:nx]
        cells = ((i + j) % 2 == 0).astype(np.uint8)  # [ny, nx], 1 = black
        checker = np.kron(cells, np.ones((p, p), np.uint8))
        img = np.full((ny * p + 2 * m, nx * p + 2 * m), 255, np.uint8)
        img[m : m + ny * p, m : m + nx * p] = 255 * (1 - checker)
        x0 = -board.square  # board-frame x of the checker's left edge
    else:
        # OpenCV 5.0's generateImage trips an ROI assertion at some sizes (rounding of the
        # marker cell); the next size up works.
        for p in range(px_per_square, px_per_square + 8):
            m = p
            size = (board.cols * p + 2 * m, board.rows * p + 2 * m)
            try:
                img = charuco_board(board).generateImage(size, marginSize=m, borderBits=1)
                break
            except cv2.error:
                continue
        else:
            raise RuntimeError(f"cannot render {board} near {px_per_square} px per square")
        x0 = 0.0
    s = p / board.square  # pixels per metre
    # pixel centres are at integers: the checker's left edge (x = x0) is at u = m - 0.5
    S = np.array([[s, 0, m - 0.5 - s * x0], [0, s, m - 0.5 - s * x0], [0, 0, 1.0]])
    return img, S


def render_view(
    printed: tuple[np.ndarray, np.ndarray],
    K: np.ndarray,
    T_cam_board: np.ndarray,
    size: tuple[int, int],
    background: int = 110,
) -> np.ndarray:
    """Gray pinhole image [H, W] uint8 (no distortion) of ``board_image``'s print at a pose."""
    img, S = printed
    H_board = K @ np.column_stack([T_cam_board[:3, 0], T_cam_board[:3, 1], T_cam_board[:3, 3]])
    H = H_board @ np.linalg.inv(S)  # print pixel -> image pixel
    return cv2.warpPerspective(
        img, H, size, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT, borderValue=background
    )


@dataclass(frozen=True, eq=False)
class HandEyeProblem:
    """A synthetic hand-eye data set and its ground truth."""

    mode: str
    X: np.ndarray  # [4, 4] true T_base_cam (eye-to-hand) or T_tool_cam (eye-in-hand)
    T_fixed: np.ndarray  # [4, 4] true T_tool_board (eye-to-hand) or T_base_board (eye-in-hand)
    T_base_tool: np.ndarray  # [N, 4, 4]
    T_cam_board: np.ndarray  # [N, 4, 4] noisy observations


def perturb(T: np.ndarray, rng: np.random.Generator, sigma_mm: float, sigma_deg: float):
    """T [4, 4] with Gaussian translation (mm per axis) and rotation (deg per axis) noise."""
    R = rot_exp(np.radians(sigma_deg) * rng.normal(size=3)) @ T[:3, :3]
    return make_T(R, T[:3, 3] + 1e-3 * sigma_mm * rng.normal(size=3))


def handeye_problem(
    n: int = 15,
    seed: int = 0,
    *,
    mode: str = "eye-to-hand",
    rotation: str = "full",
    max_rot_deg: float = 30.0,
    noise_mm: float = 0.5,
    noise_deg: float = 0.05,
) -> HandEyeProblem:
    """Tool poses around a nominal pose and the noisy board poses a camera sees at them.

    Eye-to-hand: the camera is about 1 m from the workspace, looking down at it, the board
    8 cm in front of the tool flange. Eye-in-hand: the camera is 6 cm off the flange, the board
    lies on the table. ``rotation``: ``full`` (uniform +-max_rot_deg about each tool axis),
    ``one-axis`` (about the tool z axis only) or ``none`` (pure translations).
    """
    rng = np.random.default_rng(seed)
    # nominal tool pose: flange pointing down (tool z = -world z) over the table
    R_down = np.diag([1.0, -1.0, -1.0])
    if mode == "eye-to-hand":
        X = look_at([1.15, -0.35, 0.75], [0.45, 0.0, 0.05])  # T_base_cam
        T_fixed = make_T(rot_exp([0.0, 0.0, 0.3]), [0.01, -0.02, 0.08])  # T_tool_board
        centre = np.array([0.45, 0.0, 0.25])
    elif mode == "eye-in-hand":
        X = make_T(rot_exp([0.05, -0.04, 1.57]), [0.0, -0.06, 0.03])  # T_tool_cam
        T_fixed = make_T(np.diag([1.0, -1.0, -1.0]), [0.40, -0.10, 0.0])  # T_base_board
        centre = np.array([0.48, -0.02, 0.45])
    else:
        raise ValueError(f"mode={mode!r}")
    T_base_tool = []
    for _ in range(n):
        if rotation == "full":
            w = np.radians(rng.uniform(-max_rot_deg, max_rot_deg, size=3))
        elif rotation == "one-axis":
            w = np.array([0.0, 0.0, np.radians(rng.uniform(-max_rot_deg, max_rot_deg))])
        elif rotation == "none":
            w = np.zeros(3)
        else:
            raise ValueError(f"rotation={rotation!r}")
        t = centre + rng.uniform(-0.12, 0.12, size=3)
        T_base_tool.append(make_T(R_down @ rot_exp(w), t))
    T_base_tool = np.stack(T_base_tool)  # [N, 4, 4]
    if mode == "eye-to-hand":
        clean = inv_T(X) @ T_base_tool @ T_fixed  # T_cam_board = T_cam_base T_base_tool T_tool_b
    else:
        clean = inv_T(X) @ inv_T(T_base_tool) @ T_fixed  # T_cam_tool T_tool_base T_base_board
    noisy = np.stack([perturb(T, rng, noise_mm, noise_deg) for T in clean])
    return HandEyeProblem(mode, X, T_fixed, T_base_tool, noisy)


def pose_error(T_est: np.ndarray, T_true: np.ndarray) -> tuple[float, float]:
    """(translation error mm, rotation error deg) between two poses [4, 4]."""
    dt = 1000.0 * float(np.linalg.norm(T_est[:3, 3] - T_true[:3, 3]))
    c = (np.trace(T_true[:3, :3].T @ T_est[:3, :3]) - 1.0) / 2.0
    return dt, float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))
