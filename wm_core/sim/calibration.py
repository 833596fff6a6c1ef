"""The calibration path in the simulator: a ChArUco board on the tool, a sweep, hand-eye.

What a user does on a real arm (README, the real-arm walk-through), done in MuJoCo so that it
can be measured against the truth:

1. a calibration scene: the episode's scene (same seed, so the same jittered camera and
   lights) with a ChArUco board plate fixed beside the suction cup (``BOARD``);
2. a sweep: the arm goes through ``poses`` seeded configurations above the table, with the
   wrist turned for rotation variety; at each, the scene camera renders an image at
   ``RENDER_PX`` and the board's pose is detected (``wm_core.calib.board_pose``, with the cell
   file's intrinsics); the tool's pose is the forward kinematics of the measured joints;
3. eye-to-hand calibration (``wm_core.calib.calibrate_handeye``, every method, the best by
   residual) gives the camera's pose in the world: the cell with that camera is the result.

Only images, joint readings and the cell file go in. MuJoCo's own camera pose (the truth)
is read after the fact, for the pose error that :class:`SimCalibration` reports.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass

import cv2
import mujoco
import numpy as np

from wm_core.calib import BoardSpec, HandEyeSamples, board_pose, calibrate_handeye
from wm_core.calib.synthetic import board_image
from wm_core.cell import Workcell, sim_cell
from wm_core.robot import ArmKinematics
from wm_core.sim.config import SceneConfig
from wm_core.sim.env import TableClearingEnv

log = logging.getLogger(__name__)

BOARD = BoardSpec("charuco", 5, 4, 0.04, 0.03)
"""The board on the tool: 5 x 4 squares of 4 cm, 3 cm ArUco markers (DICT_4X4_50)."""
RENDER_PX = 1024
"""Side (px) of the calibration images (the policy's own camera stays at 128 px)."""
MIN_CORNERS = 6
"""Views with fewer detected board corners are not used."""
BOARD_LINK = "suction_cup"
"""The link the board is fixed to (its pose in that link is unknown to the calibration)."""


@dataclass(frozen=True)
class SimCalibration:
    cell: Workcell
    """The cell with the calibrated camera pose (everything else as given)."""
    views: int
    """Board views used (of ``poses`` tried)."""
    method: str
    residual_translation_mm: float
    residual_rotation_deg: float
    error_translation_mm: float
    """Distance between the calibrated and MuJoCo's true camera position (evaluation only)."""
    error_rotation_deg: float
    """Angle between the calibrated and the true camera orientation (evaluation only)."""

    def summary(self) -> dict:
        return {
            "views": self.views,
            "method": self.method,
            "residual_translation_mm": round(self.residual_translation_mm, 3),
            "residual_rotation_deg": round(self.residual_rotation_deg, 4),
            "pose_error_translation_mm": round(self.error_translation_mm, 3),
            "pose_error_rotation_deg": round(self.error_rotation_deg, 4),
        }


@functools.lru_cache(maxsize=1)
def board_texture() -> tuple[tuple[float, float], bytes]:
    """(plate size (m) with its white margin, PNG bytes) of :data:`BOARD`."""
    img, s = board_image(BOARD, 100)  # [H, W] gray; s: board metres -> texture pixels
    ok, png = cv2.imencode(".png", img)
    if not ok:
        raise RuntimeError("cannot encode the calibration board texture")
    return (img.shape[1] / s[0, 0], img.shape[0] / s[1, 1]), png.tobytes()


def sweep(rng: np.random.Generator, kin: ArmKinematics, home: np.ndarray, n: int) -> np.ndarray:
    """``n`` joint configurations [n, 6]: the tool over the near half of the table, 20-32 cm
    up, then the three wrist joints turned by up to 0.35 rad (board rotation variety)."""
    out = []
    while len(out) < n:
        target = np.array([rng.uniform(0.4, 0.65), rng.uniform(-0.3, 0.2), rng.uniform(0.2, 0.32)])
        ik = kin.ik_tool_down(target, home)
        if ik.converged:
            out.append(ik.q + np.concatenate([np.zeros(3), rng.uniform(-0.35, 0.35, 3)]))
    return np.array(out)


def calibrate_camera(
    cfg: SceneConfig, seed: int, cell: Workcell | None = None, poses: int = 15
) -> SimCalibration:
    """Calibrate the scene camera of episode ``seed`` (see the module docstring)."""
    cell = cell or sim_cell()
    calib_cfg = dataclasses.replace(cfg, render_images=False, n_objects=cfg.n_objects)
    env = TableClearingEnv(calib_cfg, cell, board=board_texture())
    try:
        env.reset(seed)
        m, d = env.model, env.data
        kin = env.kin
        k = cell.camera.k_for(RENDER_PX)
        dist = np.asarray(cell.camera.D)
        rng = np.random.default_rng([seed, 0xCA1])
        tools, boards = [], []
        for q in sweep(rng, kin, np.asarray(cell.arm.home_q), poses):
            d.qpos[env._qadr] = q
            mujoco.mj_forward(m, d)
            image = env.render("scene_cam", RENDER_PX)
            t_cam_board, corners = board_pose(image, BOARD, k, dist)
            if t_cam_board is None or corners < MIN_CORNERS:
                continue
            measured = d.qpos[env._qadr].copy()  # what the joint encoders read
            tools.append(kin.link_frames(measured)[BOARD_LINK])
            boards.append(t_cam_board)
        truth = env.camera_info("scene_cam", RENDER_PX).T_world_cam  # evaluation only
    finally:
        env.close()
    samples = HandEyeSamples(np.array(tools), np.array(boards), source=f"sim seed {seed}")
    result = calibrate_handeye(samples, "eye-to-hand")
    t_world_cam = result.best.X  # the base frame is the world frame here (kin has the base)
    camera = dataclasses.replace(cell.camera, T_world_cam=tuple(map(tuple, t_world_cam)))
    d_rot = truth[:3, :3].T @ t_world_cam[:3, :3]
    angle = np.degrees(np.arccos(np.clip((np.trace(d_rot) - 1) / 2, -1.0, 1.0)))
    out = SimCalibration(
        cell=cell.with_camera(camera),
        views=len(samples),
        method=result.best.method,
        residual_translation_mm=float(result.best.residual_translation_mm),
        residual_rotation_deg=float(result.best.residual_rotation_deg),
        error_translation_mm=float(np.linalg.norm(truth[:3, 3] - t_world_cam[:3, 3]) * 1e3),
        error_rotation_deg=float(angle),
    )
    log.info("seed %d: camera calibrated from %d views: %s", seed, out.views, out.summary())
    return out
