"""Rigid-transform helpers for calibration: 4x4 homogeneous poses, rvec/quaternion forms.

Naming: ``T_a_b`` maps points from frame ``b`` into frame ``a`` (the pose of ``b`` in ``a``).
Quaternions are ``xyzw`` (ROS order) unless a name says otherwise.
"""

from __future__ import annotations

import cv2
import numpy as np
from transforms3d.quaternions import mat2quat, quat2mat


def make_T(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Homogeneous transform [4, 4] from a rotation [3, 3] and a translation [3]."""
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = np.asarray(t, dtype=float).reshape(3)
    return T


def inv_T(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid transform [4, 4] (or a stack [N, 4, 4])."""
    T = np.asarray(T, dtype=float)
    R = T[..., :3, :3]
    t = T[..., :3, 3:]
    out = np.zeros_like(T)
    Rt = np.swapaxes(R, -1, -2)
    out[..., :3, :3] = Rt
    out[..., :3, 3:] = -Rt @ t
    out[..., 3, 3] = 1.0
    return out


def rot_exp(w: np.ndarray) -> np.ndarray:
    """Rotation [3, 3] from a rotation vector [3] (axis * angle, radians)."""
    R, _ = cv2.Rodrigues(np.asarray(w, dtype=np.float64).reshape(3, 1))
    return R


def rot_log(R: np.ndarray) -> np.ndarray:
    """Rotation vector [3] (axis * angle, radians) of a rotation [3, 3]."""
    w, _ = cv2.Rodrigues(np.asarray(R, dtype=np.float64))
    return w.reshape(3)


def rotation_angle_deg(R: np.ndarray) -> float:
    """Angle (degrees) of a rotation [3, 3], in [0, 180]."""
    c = (np.trace(R) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def project_to_so3(M: np.ndarray) -> np.ndarray:
    """Nearest rotation [3, 3] (Frobenius norm) to a 3x3 matrix."""
    U, _, Vt = np.linalg.svd(M)
    d = np.sign(np.linalg.det(U @ Vt)) or 1.0
    return U @ np.diag([1.0, 1.0, d]) @ Vt


def mean_rotation(Rs: np.ndarray) -> np.ndarray:
    """Chordal L2 mean [3, 3] of rotations [N, 3, 3]."""
    return project_to_so3(np.asarray(Rs).sum(axis=0))


def T_from_rvec_tvec(rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    """Pose [4, 4] from OpenCV's rvec [3] and tvec [3] (as solvePnP returns them)."""
    return make_T(rot_exp(rvec), tvec)


def rvec_tvec_from_T(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV rvec [3] and tvec [3] of a pose [4, 4]."""
    return rot_log(T[:3, :3]), np.asarray(T[:3, 3], dtype=float).copy()


def quat_xyzw_from_R(R: np.ndarray) -> np.ndarray:
    """Unit quaternion [4] (x, y, z, w) with w >= 0 of a rotation [3, 3]."""
    w, x, y, z = mat2quat(np.asarray(R, dtype=float))
    q = np.array([x, y, z, w])
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def R_from_quat_xyzw(q: np.ndarray) -> np.ndarray:
    """Rotation [3, 3] of a quaternion [4] (x, y, z, w); it is normalised first."""
    x, y, z, w = np.asarray(q, dtype=float) / np.linalg.norm(q)
    return quat2mat([w, x, y, z])


def T_from_xyz_quat(xyz: np.ndarray, quat_xyzw: np.ndarray) -> np.ndarray:
    """Pose [4, 4] from a translation [3] and a quaternion [4] (x, y, z, w)."""
    return make_T(R_from_quat_xyzw(quat_xyzw), xyz)


def xyz_quat_from_T(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Translation [3] and quaternion [4] (x, y, z, w; w >= 0) of a pose [4, 4]."""
    return np.asarray(T[:3, 3], dtype=float).copy(), quat_xyzw_from_R(T[:3, :3])


def is_rigid(T: np.ndarray, tol: float = 1e-6) -> bool:
    """True if ``T`` is a finite 4x4 with an orthonormal, right-handed rotation block."""
    T = np.asarray(T, dtype=float)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        return False
    R = T[:3, :3]
    ok_rot = np.allclose(R.T @ R, np.eye(3), atol=tol) and np.linalg.det(R) > 0
    return bool(ok_rot and np.allclose(T[3], [0, 0, 0, 1], atol=tol))
