"""Camera intrinsics: detect a board in a directory of images, then calibrate (plumb_bob).

Detection (:func:`detect_images`) and calibration (:func:`calibrate`) are separate so that
synthetic corner observations go through the same calibration as real images.

The model is OpenCV's pinhole camera with the 5-coefficient ``plumb_bob`` distortion
``D = [k1, k2, p1, p2, k3]`` (``cv2.calibrateCamera`` with no flags). At least
:data:`MIN_IMAGES` images must show the board; 10-20 views that tilt the board by 20-45 deg
in different directions and fill the image corners give a well-conditioned fit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from wm_core.calib.boards import BoardSpec, Detection, detect_board
from wm_core.calib.transforms import T_from_rvec_tvec
from wm_core.config import ConfigError

log = logging.getLogger(__name__)

MIN_IMAGES = 5
"""Fewest images with a detected board that ``calibrate`` accepts."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm")


class CalibrationError(ConfigError):
    """Calibration input cannot be used: a missing directory, an unreadable image, too few
    detections. The message is one line and names the file(s)."""


@dataclass(frozen=True, eq=False)
class CameraIntrinsics:
    """A calibrated pinhole camera (OpenCV convention, plumb_bob distortion)."""

    name: str
    width: int
    height: int
    K: np.ndarray  # [3, 3]
    D: np.ndarray  # [5] k1, k2, p1, p2, k3

    def __post_init__(self) -> None:
        K = np.array(self.K, dtype=float)
        D = np.array(self.D, dtype=float).reshape(-1)
        if K.shape != (3, 3) or not np.all(np.isfinite(K)):
            raise ConfigError(f"K must be a finite 3x3 matrix, got {self.K!r}")
        if D.shape != (5,) or not np.all(np.isfinite(D)):
            raise ConfigError(f"D must be 5 finite plumb_bob coefficients, got {self.D!r}")
        if not (K[0, 0] > 0 and K[1, 1] > 0):
            raise ConfigError(f"focal lengths fx={K[0, 0]:g}, fy={K[1, 1]:g} must be > 0")
        if not (np.allclose(K[2], [0, 0, 1]) and K[1, 0] == 0):
            raise ConfigError(f"K={K.tolist()} must be [[fx, s, cx], [0, fy, cy], [0, 0, 1]]")
        for name in ("width", "height"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v <= 0:
                raise ConfigError(f"{name}={v!r} must be a positive integer (pixels)")
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"camera name={self.name!r} must be a non-empty string")
        K.setflags(write=False)
        D.setflags(write=False)
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "D", D)
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return (self.width, self.height)


@dataclass(frozen=True, eq=False)
class CalibrationResult:
    """``calibrate``'s output: the camera, the fit and each view's board pose."""

    intrinsics: CameraIntrinsics
    rms: float
    """Reprojection error (px): sqrt(mean over all corners of the squared 2-D error)."""
    names: tuple[str, ...]
    per_image_rms: tuple[float, ...]
    """Reprojection error (px) of each view, in ``names`` order."""
    T_cam_board: tuple[np.ndarray, ...] = field(repr=False)
    """Each view's board pose [4, 4] from the calibration."""


@dataclass(frozen=True, eq=False)
class DetectionReport:
    """What ``detect_images`` found in a directory."""

    image_size: tuple[int, int]  # (width, height)
    names: tuple[str, ...]
    """Images with a detected board."""
    detections: tuple[Detection, ...]
    failed: tuple[str, ...]
    """Images where the board was not found."""


def list_images(directory: str | Path) -> list[Path]:
    """Image files (by suffix, sorted by name) in a directory; CalibrationError if none."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CalibrationError(f"--images {str(directory)!r} is not a directory")
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise CalibrationError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {str(directory)!r}")
    return files


def detect_images(directory: str | Path, board: BoardSpec) -> DetectionReport:
    """Detect the board in every image of a directory.

    An unreadable image, or images of different sizes, raise CalibrationError naming the file.
    """
    names: list[str] = []
    dets: list[Detection] = []
    failed: list[str] = []
    size: tuple[int, int] | None = None
    first = ""
    for path in list_images(directory):
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise CalibrationError(f"cannot read image {str(path)!r} (not a readable image file)")
        this = (image.shape[1], image.shape[0])
        if size is None:
            size, first = this, path.name
        elif this != size:
            raise CalibrationError(
                f"image {str(path)!r} is {this[0]}x{this[1]} but {first} is {size[0]}x{size[1]}"
                "; all images must come from one camera mode"
            )
        det = detect_board(image, board)
        if det is None:
            failed.append(path.name)
            log.info("board not found in %s", path.name)
        else:
            names.append(path.name)
            dets.append(det)
            log.debug("%s: %d corners", path.name, len(det.ids))
    assert size is not None  # list_images returned at least one file
    return DetectionReport(size, tuple(names), tuple(dets), tuple(failed))


def calibrate(
    detections: Sequence[Detection],
    image_size: tuple[int, int],
    names: Sequence[str] | None = None,
    camera_name: str = "camera",
) -> CalibrationResult:
    """Calibrate a pinhole + plumb_bob camera from board observations (>= MIN_IMAGES views).

    ``image_size`` is (width, height). Raises CalibrationError if there are too few views.
    """
    names = tuple(names) if names is not None else tuple(f"view{i}" for i in range(len(detections)))
    if len(names) != len(detections):
        raise ValueError(f"{len(names)} names for {len(detections)} detections")
    if len(detections) < MIN_IMAGES:
        raise CalibrationError(
            f"{len(detections)} views with a board; calibration needs at least {MIN_IMAGES}"
        )
    obj = [d.object_points.astype(np.float32).reshape(-1, 1, 3) for d in detections]
    img = [d.image_points.astype(np.float32).reshape(-1, 1, 2) for d in detections]
    w, h = image_size
    criteria = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-12)
    _, K, D, rvecs, tvecs = cv2.calibrateCamera(obj, img, (w, h), None, None, criteria=criteria)
    D = np.asarray(D, dtype=float).reshape(-1)[:5]
    sq_errors = []
    per_image = []
    for o, i, r, t in zip(obj, img, rvecs, tvecs, strict=True):
        proj, _ = cv2.projectPoints(o, r, t, K, D)
        e2 = np.sum((proj.reshape(-1, 2) - i.reshape(-1, 2)) ** 2, axis=1)  # [N]
        sq_errors.append(e2)
        per_image.append(float(np.sqrt(e2.mean())))
    rms = float(np.sqrt(np.concatenate(sq_errors).mean()))
    intr = CameraIntrinsics(camera_name, int(w), int(h), K, D)
    poses = tuple(T_from_rvec_tvec(r, t) for r, t in zip(rvecs, tvecs, strict=True))
    log.info("calibrated %s from %d views: RMS %.3f px", camera_name, len(detections), rms)
    return CalibrationResult(intr, rms, names, tuple(per_image), poses)


def calibrate_directory(
    directory: str | Path, board: BoardSpec, camera_name: str = "camera"
) -> tuple[CalibrationResult, DetectionReport]:
    """Detect the board in a directory's images and calibrate; CalibrationError (naming the
    images where the board was not found) if fewer than MIN_IMAGES images show it."""
    report = detect_images(directory, board)
    if len(report.detections) < MIN_IMAGES:
        failed = ", ".join(report.failed) or "none"
        raise CalibrationError(
            f"the board was found in {len(report.detections)} image(s) of {str(directory)!r}, "
            f"need at least {MIN_IMAGES}; not found in: {failed}"
        )
    result = calibrate(report.detections, report.image_size, report.names, camera_name)
    return result, report


def projection_matrix(intr: CameraIntrinsics) -> np.ndarray:
    """camera_info P [3, 4] of a monocular camera: the new camera matrix of the rectified image
    (``getOptimalNewCameraMatrix`` with alpha 0, as ROS's camera_calibration writes it)."""
    new_K, _ = cv2.getOptimalNewCameraMatrix(intr.K, intr.D, intr.size, 0.0)
    P = np.zeros((3, 4))
    P[:, :3] = new_K
    return P
