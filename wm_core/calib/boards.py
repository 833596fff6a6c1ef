"""Calibration boards: their geometry, detection in an image, and the board pose in a camera.

Board frame (both kinds): origin at a corner of the board, x along the columns, y along the
rows (down the printed image), z into the board (right-handed), metres.

* ``chessboard``: ``cols`` x ``rows`` count INNER corners; corner (i, j) is at
  ``(i * square, j * square, 0)``, row by row (OpenCV's order). A chessboard's corner order is
  only fixed up to the board's symmetry (180 deg, or 90 deg for a square board), so its pose is
  ambiguous: use ChArUco for hand-eye samples.
* ``charuco``: ``cols`` x ``rows`` count SQUARES; ``marker`` is the ArUco marker side;
  object points are OpenCV's ``CharucoBoard.getChessboardCorners()`` (origin at the board's
  top-left outer corner), so a pose is unambiguous and partial views work. OpenCV 4.x builds
  without the fix for opencv/opencv#25539 return ChArUco corners offset by about +0.5 px; the
  pinned 5.0 wheel is fixed (tests/wm_core/calib/test_synthetic.py checks for the offset).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import cv2
import numpy as np

from wm_core.calib.transforms import T_from_rvec_tvec
from wm_core.config import ConfigError, check_range

log = logging.getLogger(__name__)

BOARD_KINDS = ("chessboard", "charuco")
DEFAULT_DICTIONARY = "DICT_4X4_50"
MIN_CHARUCO_CORNERS = 6
"""Fewest ChArUco corners for a view to count as a detection (calibration and pose)."""


def aruco_dictionaries() -> list[str]:
    """Names of OpenCV's predefined ArUco dictionaries (``DICT_4X4_50``, ...)."""
    return sorted(n for n in dir(cv2.aruco) if n.startswith("DICT_") and n[5].isdigit())


@dataclass(frozen=True)
class BoardSpec:
    """A calibration board (see the module docstring for the frame and the counts)."""

    kind: str
    cols: int
    rows: int
    square: float
    """Square side, metres."""
    marker: float | None = None
    """ArUco marker side, metres (ChArUco only; required there)."""
    dictionary: str = DEFAULT_DICTIONARY
    """ArUco dictionary name (ChArUco only)."""

    def __post_init__(self) -> None:
        if self.kind not in BOARD_KINDS:
            raise ConfigError(f"board={self.kind!r} must be one of {list(BOARD_KINDS)}")
        what = "inner corners" if self.kind == "chessboard" else "squares"
        check_range(f"cols ({what})", self.cols, 3, 100, integer=True)
        check_range(f"rows ({what})", self.rows, 3, 100, integer=True)
        check_range("square (m)", self.square, 1e-4, 1.0)
        if self.kind == "chessboard":
            if self.marker is not None:
                raise ConfigError(f"marker={self.marker!r} only applies to a charuco board")
            return
        if self.marker is None:
            raise ConfigError("a charuco board needs marker (the ArUco marker side, metres)")
        check_range("marker (m)", self.marker, 1e-5, self.square * 0.999)
        if self.dictionary not in aruco_dictionaries():
            raise ConfigError(
                f"dictionary={self.dictionary!r} is not an OpenCV ArUco dictionary; "
                f"e.g. {DEFAULT_DICTIONARY}, DICT_5X5_100, DICT_6X6_250"
            )
        n_markers = (self.cols * self.rows) // 2
        size = _dictionary(self.dictionary).bytesList.shape[0]
        if n_markers > size:
            raise ConfigError(
                f"a {self.cols}x{self.rows} charuco board needs {n_markers} markers but "
                f"dictionary={self.dictionary} has {size}"
            )

    def object_points(self) -> np.ndarray:
        """All board corners in the board frame [N, 3] float32, metres (ids = row index)."""
        if self.kind == "chessboard":
            j, i = np.mgrid[0 : self.rows, 0 : self.cols]
            pts = np.stack([i.ravel(), j.ravel(), np.zeros(i.size)], axis=1) * self.square
            return pts.astype(np.float32)  # [cols*rows, 3]
        return np.asarray(charuco_board(self).getChessboardCorners(), dtype=np.float32)

    @property
    def outer_size(self) -> tuple[float, float]:
        """Printed extent (width, height) in metres of the checker area."""
        if self.kind == "chessboard":
            return ((self.cols + 1) * self.square, (self.rows + 1) * self.square)
        return (self.cols * self.square, self.rows * self.square)


@functools.lru_cache(maxsize=16)
def _dictionary(name: str) -> cv2.aruco.Dictionary:
    return cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name))


@functools.lru_cache(maxsize=16)
def charuco_board(spec: BoardSpec) -> cv2.aruco.CharucoBoard:
    """OpenCV's ChArUco board for a ``charuco`` spec."""
    if spec.kind != "charuco":
        raise ValueError(f"charuco_board needs a charuco spec, got {spec.kind}")
    return cv2.aruco.CharucoBoard(
        (spec.cols, spec.rows), spec.square, spec.marker, _dictionary(spec.dictionary)
    )


@dataclass(frozen=True, eq=False)
class Detection:
    """Board corners found in one image."""

    image_points: np.ndarray  # [N, 2] float32, pixels
    object_points: np.ndarray  # [N, 3] float32, board frame, metres
    ids: np.ndarray  # [N] int, index into BoardSpec.object_points()

    def __post_init__(self) -> None:
        n = len(self.ids)
        if self.image_points.shape != (n, 2) or self.object_points.shape != (n, 3):
            raise ValueError(
                f"Detection: image_points {self.image_points.shape}, object_points "
                f"{self.object_points.shape} and ids ({n}) disagree"
            )


def to_gray(image: np.ndarray) -> np.ndarray:
    """8-bit single-channel view of a gray, BGR or BGRA image [H, W(, C)]."""
    if image.ndim == 2:
        gray = image
    elif image.ndim == 3 and image.shape[2] == 3:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    elif image.ndim == 3 and image.shape[2] == 4:
        gray = cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    else:
        raise ValueError(f"expected a gray, BGR or BGRA image, got shape {image.shape}")
    if gray.dtype != np.uint8:
        gray = cv2.normalize(gray, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return gray


def detect_board(image: np.ndarray, board: BoardSpec) -> Detection | None:
    """Find the board's corners (sub-pixel) in an image [H, W(, C)]; None if not found."""
    gray = to_gray(image)
    if board.kind == "chessboard":
        return _detect_chessboard(gray, board)
    return _detect_charuco(gray, board)


def _detect_chessboard(gray: np.ndarray, board: BoardSpec) -> Detection | None:
    flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK
    found, corners = cv2.findChessboardCorners(gray, (board.cols, board.rows), None, flags)
    if not found or corners is None:
        return None
    corners = corners.reshape(-1, 2).astype(np.float32)  # [N, 2]
    # Refinement window: under half the smallest corner spacing, so it never spans two corners.
    grid = corners.reshape(board.rows, board.cols, 2)
    spacing = min(
        np.linalg.norm(np.diff(grid, axis=1), axis=2).min(),
        np.linalg.norm(np.diff(grid, axis=0), axis=2).min(),
    )
    half = int(np.clip(0.4 * spacing, 2, 11))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-3)
    refined = cv2.cornerSubPix(gray, corners.reshape(-1, 1, 2), (half, half), (-1, -1), criteria)
    ids = np.arange(board.cols * board.rows)
    return Detection(refined.reshape(-1, 2).astype(np.float32), board.object_points(), ids)


def _detect_charuco(gray: np.ndarray, board: BoardSpec) -> Detection | None:
    cb = charuco_board(board)
    corners, ids, _, _ = cv2.aruco.CharucoDetector(cb).detectBoard(gray)
    if ids is None or len(ids) < MIN_CHARUCO_CORNERS:
        return None
    if cb.checkCharucoCornersCollinear(ids):
        return None
    ids = ids.reshape(-1).astype(int)
    obj = board.object_points()[ids]  # [N, 3]
    return Detection(corners.reshape(-1, 2).astype(np.float32), obj, ids)


def pose_from_detection(det: Detection, K: np.ndarray, D: np.ndarray) -> np.ndarray | None:
    """T_cam_board [4, 4] from a detection by solvePnP (IPPE for the planar board, then LM
    refinement); None if it fails or puts the board behind the camera."""
    obj = det.object_points.astype(np.float64)
    img = det.image_points.astype(np.float64)
    if len(obj) < 4:
        return None
    K = np.asarray(K, dtype=np.float64)
    D = np.asarray(D, dtype=np.float64).reshape(-1)
    ok, rvec, tvec = cv2.solvePnP(obj, img, K, D, flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        return None
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, K, D, rvec, tvec)
    T = T_from_rvec_tvec(rvec, tvec)
    if not np.all(np.isfinite(T)) or T[2, 3] <= 0:
        return None
    return T


def board_pose(
    image: np.ndarray, board: BoardSpec, K: np.ndarray, D: np.ndarray
) -> tuple[np.ndarray | None, int]:
    """Board pose in the camera from one image: (T_cam_board [4, 4] or None, corners found).

    ``K`` [3, 3] and ``D`` [5] are the camera's intrinsics (see ``read_camera_info``). For a
    ChArUco board the detected corners are matched to the board (``matchImagePoints``) before
    solvePnP, so partial views give a pose.
    """
    det = detect_board(image, board)
    if det is None:
        return None, 0
    if board.kind == "charuco":
        obj, img = charuco_board(board).matchImagePoints(
            det.image_points.reshape(-1, 1, 2), det.ids.reshape(-1, 1)
        )
        det = Detection(
            np.asarray(img, np.float32).reshape(-1, 2),
            np.asarray(obj, np.float32).reshape(-1, 3),
            det.ids,
        )
    return pose_from_detection(det, K, D), len(det.ids)
