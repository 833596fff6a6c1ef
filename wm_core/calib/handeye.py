"""Hand-eye calibration: the camera's pose from robot poses and board observations.

Frames: the robot base frame IS the world frame. ``T_base_tool`` is the tool pose from forward
kinematics; ``T_cam_board`` is the board pose in the camera's OpenCV optical frame (x right,
y down, z forward), as solvePnP gives it.

* ``eye-to-hand`` (static camera, board on the tool; our cell): solves ``X = T_base_cam``.
  For every sample ``T_tool_board = inv(T_base_tool_i) @ X @ T_cam_board_i`` is the same.
* ``eye-in-hand`` (camera on the tool, static board): solves ``X = T_tool_cam``.
  For every sample ``T_base_board = T_base_tool_i @ X @ T_cam_board_i`` is the same.

Both are ``G_i @ X @ C_i = const`` with ``C_i = T_cam_board_i`` and ``G_i = T_base_tool_i``
(eye-in-hand) or ``G_i = inv(T_base_tool_i)`` (eye-to-hand: the usual trick of feeding the
inverted robot poses to an eye-in-hand solver). Each pair of samples (i, j) gives the motion
equation ``A @ X = X @ B`` with ``A = inv(G_j) @ G_i`` and ``B = C_j @ inv(C_i)``.

Solvers (the five that OpenCV's ``calibrateHandEye`` offers, same names; the OpenCV 5 wheel
pinned here ships their flags but not the function, so they are written out below from the
papers; a test checks them against ``cv2.calibrateHandEye`` where a build has it). All use
every pair (i < j). tsai, park and horaud solve the rotation, then the translation by linear
least squares; andreff and daniilidis solve both together (andreff then re-fits t to its
orthonormalised rotation).

* ``tsai``: Tsai & Lenz 1989, modified Rodrigues parameters, then least-squares translation.
* ``park``: Park & Martin 1994, rotation logs aligned by least squares (SVD), then translation.
* ``horaud``: Horaud & Dornaika 1995, unit quaternion from an eigenproblem, then translation.
* ``andreff``: Andreff et al. 2001, linear (Kronecker) system in vec(R) and t together; t is
  then re-fitted to the orthonormalised R (OpenCV keeps the linear t; the re-fit was more
  accurate on synthetic cells, see calibration/README.md).
* ``daniilidis``: Daniilidis 1999, dual quaternions, rotation and translation together.

Methods are compared by the spread of the constant transform above (translation RMS in mm and
rotation RMS in degrees about the mean); ``all`` picks the lowest
``score = translation_mm + ROTATION_MM_PER_DEG * rotation_deg`` (1 deg ~ 17.5 mm at 1 m).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from wm_core.calib.transforms import (
    inv_T,
    make_T,
    mean_rotation,
    project_to_so3,
    rot_log,
    rotation_angle_deg,
)
from wm_core.config import ConfigError

log = logging.getLogger(__name__)

METHODS = ("tsai", "park", "horaud", "andreff", "daniilidis")
MODES = ("eye-to-hand", "eye-in-hand")
MIN_POSES = 3
"""Fewest samples accepted (an error below it)."""
RECOMMENDED_POSES = 10
"""Fewer samples than this get a warning."""
MIN_ROTATION_DEG = 10.0
"""Warn if no two tool poses differ by more than this rotation."""
PARALLEL_AXES_DEG = 5.0
"""Warn if every relative rotation axis lies within this angle of one line."""
ROTATION_MM_PER_DEG = 1000.0 * np.pi / 180.0
"""Weight of the rotation residual in the method score (arc length at 1 m, mm per deg)."""
_MIN_PAIR_ROTATION_DEG = 1.0  # pairs rotating less than this say nothing about the axis


@dataclass(frozen=True, eq=False)
class HandEyeSamples:
    """Validated samples: N robot poses and the N board poses seen at them."""

    T_base_tool: np.ndarray  # [N, 4, 4]
    T_cam_board: np.ndarray  # [N, 4, 4]
    camera_info: str = ""
    """The camera_info YAML the board poses were measured with (as written in the file)."""
    tool_frame: str = "tool0"
    source: str = "samples"

    def __post_init__(self) -> None:
        a = np.asarray(self.T_base_tool, dtype=float)
        b = np.asarray(self.T_cam_board, dtype=float)
        if a.ndim != 3 or a.shape[1:] != (4, 4) or b.shape != a.shape:
            raise ConfigError(
                f"{self.source}: T_base_tool {a.shape} and T_cam_board {b.shape} must both be "
                "[N, 4, 4]"
            )
        if len(a) < MIN_POSES:
            raise ConfigError(
                f"{self.source}: too few poses ({len(a)}); hand-eye needs at least {MIN_POSES} "
                f"(recommended >= {RECOMMENDED_POSES}, with varied tool rotations)"
            )
        object.__setattr__(self, "T_base_tool", a)
        object.__setattr__(self, "T_cam_board", b)

    def __len__(self) -> int:
        return len(self.T_base_tool)


@dataclass(frozen=True, eq=False)
class MethodResult:
    """One solver's answer and its residuals (NaN and ``error`` set if it failed)."""

    method: str
    X: np.ndarray  # [4, 4] T_base_cam (eye-to-hand) or T_tool_cam (eye-in-hand)
    residual_translation_mm: float
    residual_rotation_deg: float
    error: str = ""

    @property
    def score(self) -> float:
        if self.error:
            return float("inf")
        return self.residual_translation_mm + ROTATION_MM_PER_DEG * self.residual_rotation_deg


@dataclass(frozen=True, eq=False)
class HandEyeResult:
    """All methods tried, the best one and the motion-set warnings."""

    mode: str
    samples: int
    results: tuple[MethodResult, ...]
    best: MethodResult
    warnings: tuple[str, ...] = field(default=())


# ---------------------------------------------------------------------------------------------
# motion pairs and the solvers


def _G(T_base_tool: np.ndarray, mode: str) -> np.ndarray:
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r} must be one of {list(MODES)}")
    return inv_T(T_base_tool) if mode == "eye-to-hand" else np.asarray(T_base_tool, dtype=float)


def motion_pairs(G: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relative motions A, B [P, 4, 4] over all pairs i < j, with A @ X = X @ B."""
    iG, iC = inv_T(G), inv_T(C)
    pairs = list(combinations(range(len(G)), 2))
    A = np.stack([iG[j] @ G[i] for i, j in pairs])
    B = np.stack([C[j] @ iC[i] for i, j in pairs])
    return A, B


def _skew(v: np.ndarray) -> np.ndarray:
    x, y, z = v
    return np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])


def _translation(A: np.ndarray, B: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Least-squares t in (Ra - I) t = R tb - ta over all motions."""
    M = (A[:, :3, :3] - np.eye(3)).reshape(-1, 3)  # [3P, 3]
    rhs = (np.einsum("ij,pj->pi", R, B[:, :3, 3]) - A[:, :3, 3]).reshape(-1)  # [3P]
    t, *_ = np.linalg.lstsq(M, rhs, rcond=None)
    return t


def _tsai(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    rows, rhs = [], []
    for a, b in zip(A, B, strict=True):
        pa, pb = _mrp(a[:3, :3]), _mrp(b[:3, :3])
        rows.append(_skew(pa + pb))
        rhs.append(pb - pa)
    p_prime, *_ = np.linalg.lstsq(np.concatenate(rows), np.concatenate(rhs), rcond=None)
    p = 2.0 * p_prime / np.sqrt(1.0 + p_prime @ p_prime)
    n2 = p @ p
    R = (1.0 - n2 / 2.0) * np.eye(3) + 0.5 * (np.outer(p, p) + np.sqrt(4.0 - n2) * _skew(p))
    R = project_to_so3(R)
    return make_T(R, _translation(A, B, R))


def _mrp(R: np.ndarray) -> np.ndarray:
    """Tsai's modified Rodrigues vector 2 sin(theta / 2) * axis [3]."""
    w = rot_log(R)
    theta = np.linalg.norm(w)
    if theta < 1e-12:
        return np.zeros(3)
    return 2.0 * np.sin(theta / 2.0) * w / theta


def _park(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    # alpha_i = R beta_i with alpha, beta the rotation logs: orthogonal Procrustes by SVD
    # (equal to Park & Martin's (M^T M)^(-1/2) M^T where that is defined).
    M = np.zeros((3, 3))
    for a, b in zip(A, B, strict=True):
        M += np.outer(rot_log(a[:3, :3]), rot_log(b[:3, :3]))
    R = project_to_so3(M)
    return make_T(R, _translation(A, B, R))


def _quat_wxyz(R: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z) with w >= 0 of a rotation [3, 3]."""
    v = rot_log(R)
    theta = np.linalg.norm(v)
    if theta < 1e-12:
        return np.array([1.0, 0.0, 0.0, 0.0])
    return np.concatenate([[np.cos(theta / 2)], np.sin(theta / 2) * v / theta])


def _qmat_left(q: np.ndarray) -> np.ndarray:
    """L(q) with L(q) p = q * p (Hamilton product, wxyz)."""
    w, x, y, z = q
    return np.array([[w, -x, -y, -z], [x, w, -z, y], [y, z, w, -x], [z, -y, x, w]])


def _qmat_right(q: np.ndarray) -> np.ndarray:
    """R(q) with R(q) p = p * q (Hamilton product, wxyz)."""
    w, x, y, z = q
    return np.array([[w, -x, -y, -z], [x, w, z, -y], [y, -z, w, x], [z, y, -x, w]])


def _R_from_wxyz(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def _horaud(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    # qa * qx = qx * qb  ->  (L(qa) - R(qb)) qx = 0; qx = eigenvector of the least eigenvalue.
    S = np.zeros((4, 4))
    for a, b in zip(A, B, strict=True):
        Q = _qmat_left(_quat_wxyz(a[:3, :3])) - _qmat_right(_quat_wxyz(b[:3, :3]))
        S += Q.T @ Q
    _, vecs = np.linalg.eigh(S)
    R = _R_from_wxyz(vecs[:, 0])
    return make_T(R, _translation(A, B, R))


def _andreff(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    # Ra R = R Rb     ->  (I9 - Rb (x) Ra) vec(R) = 0                 (vec: column-major)
    # Ra t + ta = R tb + t  ->  (tb^T (x) I3) vec(R) + (I3 - Ra) t = ta
    Ra, Rb, ta, tb = A[:, :3, :3], B[:, :3, :3], A[:, :3, 3], B[:, :3, 3]
    P = len(A)
    kron_ba = np.einsum("pij,pkl->pikjl", Rb, Ra).reshape(P, 9, 9)  # Rb (x) Ra, [P, 9, 9]
    kron_t = np.einsum("pj,kl->pkjl", tb, np.eye(3)).reshape(P, 3, 9)  # tb^T (x) I3, [P, 3, 9]
    rot_rows = np.concatenate([np.eye(9) - kron_ba, np.zeros((P, 9, 3))], axis=2)  # [P, 9, 12]
    tr_rows = np.concatenate([kron_t, np.eye(3) - Ra], axis=2)  # [P, 3, 12]
    M = np.concatenate([rot_rows, tr_rows], axis=1).reshape(-1, 12)  # [12P, 12]
    rhs = np.concatenate([np.zeros((P, 9)), ta], axis=1).reshape(-1)  # [12P]
    x, *_ = np.linalg.lstsq(M, rhs, rcond=None)
    R = project_to_so3(x[:9].reshape(3, 3, order="F"))
    # The linear t went with the unconstrained vec(R); re-fit it to the orthonormalised R.
    return make_T(R, _translation(A, B, R))


def _dual_quat(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit dual quaternion (real, dual), wxyz each, with real w >= 0."""
    q = _quat_wxyz(T[:3, :3])
    t = np.concatenate([[0.0], T[:3, 3]])
    return q, 0.5 * _qmat_left(t) @ q


def _daniilidis(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    # a x = x b for unit dual quaternions; with a = (a0, va) + eps (a0', va') etc.:
    #   [va - vb, [va + vb]x, 0, 0; va' - vb', [va' + vb']x, va - vb, [va + vb]x] (q; q') = 0
    blocks = []
    for a, b in zip(A, B, strict=True):
        (qa, da), (qb, db) = _dual_quat(a), _dual_quat(b)
        top = np.hstack([(qa - qb)[1:, None], _skew(qa[1:] + qb[1:]), np.zeros((3, 4))])
        bot = np.hstack(
            [
                (da - db)[1:, None],
                _skew(da[1:] + db[1:]),
                (qa - qb)[1:, None],
                _skew(qa[1:] + qb[1:]),
            ]
        )
        blocks += [top, bot]
    _, _, Vt = np.linalg.svd(np.concatenate(blocks), full_matrices=False)  # [6P, 8] -> Vt [8, 8]
    v1, v2 = Vt[-2], Vt[-1]
    u1, w1, u2, w2 = v1[:4], v1[4:], v2[:4], v2[4:]
    # x = l1 v1 + l2 v2 with |q| = 1 and q . q' = 0; s = l1 / l2 solves a quadratic.
    a = u1 @ w1
    b = u1 @ w2 + u2 @ w1
    c = u2 @ w2
    if abs(a) > 1e-12:
        disc = max(b * b - 4 * a * c, 0.0)
        roots = [(-b + np.sqrt(disc)) / (2 * a), (-b - np.sqrt(disc)) / (2 * a)]
    else:
        roots = [-c / b] if abs(b) > 1e-12 else [0.0]
    norms = [s * s * (u1 @ u1) + 2 * s * (u1 @ u2) + u2 @ u2 for s in roots]
    k = int(np.argmax(norms))
    if not norms[k] > 0:
        raise np.linalg.LinAlgError("daniilidis: no unit dual quaternion in the null space")
    l2 = 1.0 / np.sqrt(norms[k])
    l1 = roots[k] * l2
    q = l1 * u1 + l2 * u2
    d = l1 * w1 + l2 * w2
    q_conj = q * np.array([1.0, -1.0, -1.0, -1.0])
    t = 2.0 * (_qmat_left(d) @ q_conj)[1:]
    return make_T(_R_from_wxyz(q), t)


_SOLVERS = {
    "tsai": _tsai,
    "park": _park,
    "horaud": _horaud,
    "andreff": _andreff,
    "daniilidis": _daniilidis,
}


def solve(T_base_tool: np.ndarray, T_cam_board: np.ndarray, mode: str, method: str) -> np.ndarray:
    """X [4, 4]: T_base_cam (eye-to-hand) or T_tool_cam (eye-in-hand) by one method.

    ``T_base_tool`` and ``T_cam_board`` are [N, 4, 4]. Raises numpy's LinAlgError or returns
    non-finite values on a hopeless motion set; ``calibrate_handeye`` catches both.
    """
    if method not in _SOLVERS:
        raise ConfigError(f"method={method!r} must be one of {list(METHODS)}")
    A, B = motion_pairs(_G(T_base_tool, mode), np.asarray(T_cam_board, dtype=float))
    return _SOLVERS[method](A, B)


# ---------------------------------------------------------------------------------------------
# residuals, degeneracy, the whole calibration


def constant_transforms(
    T_base_tool: np.ndarray, T_cam_board: np.ndarray, X: np.ndarray, mode: str
) -> np.ndarray:
    """G_i @ X @ C_i [N, 4, 4]: T_tool_board (eye-to-hand) or T_base_board (eye-in-hand) per
    sample; all equal for a perfect X and noise-free data."""
    return _G(T_base_tool, mode) @ X @ np.asarray(T_cam_board, dtype=float)


def residuals(
    T_base_tool: np.ndarray, T_cam_board: np.ndarray, X: np.ndarray, mode: str
) -> tuple[float, float]:
    """Spread of ``constant_transforms`` about their mean: (translation RMS mm, rotation RMS
    deg)."""
    Y = constant_transforms(T_base_tool, T_cam_board, X, mode)
    t = Y[:, :3, 3]  # [N, 3]
    t_rms = float(np.sqrt(np.mean(np.sum((t - t.mean(axis=0)) ** 2, axis=1))))
    R_mean = mean_rotation(Y[:, :3, :3])
    angles = np.array([rotation_angle_deg(R_mean.T @ R) for R in Y[:, :3, :3]])  # [N]
    return 1000.0 * t_rms, float(np.sqrt(np.mean(angles**2)))


def motion_warnings(T_base_tool: np.ndarray, mode: str = "eye-to-hand") -> list[str]:
    """Warnings about a motion set that leaves the hand-eye problem ill-posed: too few poses,
    too little rotation between tool poses, or rotations all about (nearly) one axis.

    The axes are those of the solver's robot motions A (see the module docstring): in the base
    frame for eye-to-hand, in the tool frame for eye-in-hand."""
    T = np.asarray(T_base_tool, dtype=float)
    out = []
    n = len(T)
    if n < RECOMMENDED_POSES:
        out.append(f"only {n} poses; at least {RECOMMENDED_POSES} are recommended")
    RG = _G(T, mode)[:, :3, :3]  # [N, 3, 3]
    axes, max_angle = [], 0.0
    for i, j in combinations(range(n), 2):
        w = rot_log(RG[j].T @ RG[i])  # rotation of A_ij = inv(G_j) G_i
        angle = float(np.degrees(np.linalg.norm(w)))
        max_angle = max(max_angle, angle)
        if angle > _MIN_PAIR_ROTATION_DEG:
            axes.append(w / np.linalg.norm(w))
    if max_angle < MIN_ROTATION_DEG:
        out.append(
            f"too little rotation: the largest relative rotation between tool poses is "
            f"{max_angle:.1f} deg (< {MIN_ROTATION_DEG:.0f} deg); rotate the tool by 20-45 deg "
            "about different axes"
        )
    elif len(axes) >= 2:
        # the line best fitting all axes (sign-free), then each axis's angle from it
        _, _, Vt = np.linalg.svd(np.asarray(axes))
        cos = np.clip(np.abs(np.asarray(axes) @ Vt[0]), 0.0, 1.0)
        spread = float(np.degrees(np.arccos(cos.min())))
        if spread < PARALLEL_AXES_DEG:
            out.append(
                f"near-parallel rotation axes: every relative rotation axis is within "
                f"{spread:.1f} deg of one line (< {PARALLEL_AXES_DEG:.0f} deg); the "
                "translation along that axis is unobservable: rotate about other axes too"
            )
    return out


def calibrate_handeye(
    samples: HandEyeSamples, mode: str, methods: Sequence[str] = METHODS
) -> HandEyeResult:
    """Run the given methods and pick the one with the lowest residual score.

    Warnings about the motion set are logged and returned; a method that fails numerically is
    reported with ``error`` set. ConfigError if every method fails.
    """
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r} must be one of {list(MODES)}")
    bad = [m for m in methods if m not in _SOLVERS]
    if bad or not methods:
        raise ConfigError(f"method(s) {bad or methods!r}: choose from {list(METHODS)}")
    warns = motion_warnings(samples.T_base_tool, mode)
    for w in warns:
        log.warning("hand-eye: %s", w)
    results = []
    for m in methods:
        try:
            X = solve(samples.T_base_tool, samples.T_cam_board, mode, m)
            if not np.all(np.isfinite(X)):
                raise np.linalg.LinAlgError("non-finite solution")
            t_mm, r_deg = residuals(samples.T_base_tool, samples.T_cam_board, X, mode)
            results.append(MethodResult(m, X, t_mm, r_deg))
        except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
            log.warning("hand-eye method %s failed: %s", m, exc)
            results.append(MethodResult(m, np.full((4, 4), np.nan), np.nan, np.nan, str(exc)))
    best = min(results, key=lambda r: r.score)
    if best.error:
        raise ConfigError(f"{samples.source}: every hand-eye method failed ({best.error})")
    return HandEyeResult(mode, len(samples), tuple(results), best, tuple(warns))


def results_table(result: HandEyeResult) -> str:
    """Human-readable table of each method's residuals, best one marked."""
    lines = [f"{'method':<12}{'trans RMS [mm]':>16}{'rot RMS [deg]':>15}"]
    for r in result.results:
        if r.error:
            lines.append(f"{r.method:<12}{'failed: ' + r.error:>31}")
            continue
        mark = "  <- best" if r is result.best else ""
        lines.append(
            f"{r.method:<12}{r.residual_translation_mm:>16.3f}"
            f"{r.residual_rotation_deg:>15.4f}{mark}"
        )
    return "\n".join(lines)
