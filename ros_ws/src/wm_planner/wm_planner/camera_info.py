"""``/camera/camera_info`` against the cell file's camera.

The object readout maps each latent patch onto the table through the cell file's camera
(``wm_core.train.readout.priors_for``). The published camera info is compared with it, scaled
to the published image size: when fx, fy (relative) or cx, cy (as a fraction of the image size)
or the aspect ratio disagree by more than ``camera_info_tolerance``, the node warns (throttled,
one line) by how much. With ``use_camera_info_intrinsics: true`` the published size and K
(with the cell's pose) replace the cell's for the readout priors; without it the cell file's
stay.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sensor_msgs.msg import CameraInfo

from wm_core.cell import Camera, Workcell
from wm_core.config import ConfigError


def camera_from_info(msg: CameraInfo, cell_camera: Camera) -> Camera:
    """The camera a CameraInfo describes (size, K, plumb_bob D), at the cell camera's pose.
    ConfigError (one line) when it is not a usable pinhole (an uncalibrated driver publishes
    zeros)."""
    k = [float(x) for x in msg.k]
    d = [float(x) for x in msg.d]
    if msg.distortion_model == "plumb_bob" and len(d) in (4, 5):
        dist = (*d, 0.0)[:5] if len(d) == 4 else tuple(d)
    else:  # the readout priors use no distortion; keep the cell's
        dist = cell_camera.D
    return Camera(
        width=int(msg.width),
        height=int(msg.height),
        K=tuple(k),
        T_world_cam=cell_camera.T_world_cam,
        D=dist,
        frame_id=msg.header.frame_id or cell_camera.frame_id,
    )


def intrinsics_disagreement(published: Camera, cell_camera: Camera) -> tuple[float, str]:
    """How far the published intrinsics are from the cell's, scaled to the published size:
    (the largest of |dfx|/fx, |dfy|/fy, |dcx|/width, |dcy|/height and the aspect ratio's
    relative change, a one-line description)."""
    w, h = published.width, published.height
    kc, kp = cell_camera.k_for(w, h), published.k_matrix
    aspect = abs((w / h) / (cell_camera.width / cell_camera.height) - 1.0)
    errs = {
        "fx": abs(kp[0, 0] - kc[0, 0]) / kc[0, 0],
        "fy": abs(kp[1, 1] - kc[1, 1]) / kc[1, 1],
        "cx": abs(kp[0, 2] - kc[0, 2]) / w,
        "cy": abs(kp[1, 2] - kc[1, 2]) / h,
        "aspect": aspect,
    }
    text = (
        f"{w}x{h} fx {kp[0, 0]:.1f} fy {kp[1, 1]:.1f} cx {kp[0, 2]:.1f} cy {kp[1, 2]:.1f}; "
        f"the cell's {cell_camera.width}x{cell_camera.height} camera at that size: "
        f"fx {kc[0, 0]:.1f} fy {kc[1, 1]:.1f} cx {kc[0, 2]:.1f} cy {kc[1, 2]:.1f} "
        f"(worst: {max(errs, key=errs.get)} {max(errs.values()):.1%})"
    )
    return max(errs.values()), text


@dataclass(frozen=True)
class CameraInfoVerdict:
    stats: dict[str, str] = field(default_factory=dict)  # the node's diagnostics entries
    warning: str = ""  # one line to log (throttled) while this camera info lasts; "" if none
    cell: Workcell | None = None  # the cell to read objects with, when the node should switch
    text: str = ""  # the published and the cell's intrinsics, one line


def judge_camera_info(
    msg: CameraInfo, cell: Workcell, use_intrinsics: bool, tolerance: float
) -> CameraInfoVerdict:
    """What a newly published camera info means for the readout."""
    try:
        published = camera_from_info(msg, cell.camera)
    except ConfigError as exc:
        return CameraInfoVerdict({"camera_info": "unusable"}, f"camera_info ignored: {exc}")
    err, text = intrinsics_disagreement(published, cell.camera)
    agrees = err <= tolerance
    stats = {"camera_info": f"{'agrees' if agrees else 'disagrees'} ({err:.1%})"}
    if not use_intrinsics:
        warning = (
            ""
            if agrees
            else f"camera_info disagrees with the cell file's camera: {text}; the readout uses "
            "the cell file's (use_camera_info_intrinsics: true to use camera_info)"
        )
        return CameraInfoVerdict(stats, warning, text=text)
    try:
        return CameraInfoVerdict(stats, cell=cell.with_camera(published), text=text)
    except ConfigError as exc:
        stats["readout_camera"] = "cell file (camera_info unusable)"
        return CameraInfoVerdict(stats, f"camera_info not used: {exc}", text=text)
