"""Camera calibration: intrinsics from board images, hand-eye (camera pose) from robot poses.

* :mod:`wm_core.calib.boards` - chessboard / ChArUco geometry, detection, ``board_pose``.
* :mod:`wm_core.calib.intrinsics` - ``detect_images`` + ``calibrate`` (pinhole, plumb_bob).
* :mod:`wm_core.calib.handeye` - the five AX = XB solvers, residuals, degeneracy warnings.
* :mod:`wm_core.calib.io` - camera_info, samples and result YAML (formats documented there).
* :mod:`wm_core.calib.synthetic` - ground-truth data for tests and accuracy figures.

The command line is ``wm calibrate intrinsics`` and ``wm calibrate handeye``.
"""

from wm_core.calib.boards import BoardSpec, Detection, board_pose, detect_board
from wm_core.calib.handeye import HandEyeResult, HandEyeSamples, calibrate_handeye
from wm_core.calib.intrinsics import (
    CalibrationError,
    CalibrationResult,
    CameraIntrinsics,
    calibrate,
    detect_images,
)
from wm_core.calib.io import (
    read_camera_info,
    read_handeye_samples,
    write_camera_info,
    write_handeye_result,
)

__all__ = [
    "BoardSpec",
    "CalibrationError",
    "CalibrationResult",
    "CameraIntrinsics",
    "Detection",
    "HandEyeResult",
    "HandEyeSamples",
    "board_pose",
    "calibrate",
    "calibrate_handeye",
    "detect_board",
    "detect_images",
    "read_camera_info",
    "read_handeye_samples",
    "write_camera_info",
    "write_handeye_result",
]
