"""The planner node's message-side work, free of rclpy: the latent it receives, and the tool
actions it plans turned into the joint targets it sends."""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image

from wm_core.cell import Workcell
from wm_core.models.readout import unpack_map
from wm_core.robot import ArmKinematics
from wm_core.robot.action import basis_joints, joint_target


def decode_latent(msg: Image) -> np.ndarray:
    """32FC1 Image -> latent [N, D] float32; ValueError naming what is wrong."""
    if msg.encoding != "32FC1":
        raise ValueError(f"latent encoding {msg.encoding!r}, expected 32FC1")
    if msg.step != 4 * msg.width or len(msg.data) != msg.height * msg.step:
        raise ValueError(
            f"latent {msg.height}x{msg.width}: step {msg.step}, {len(msg.data)} bytes do not fit"
        )
    dtype = ">f4" if msg.is_bigendian else "<f4"
    z = np.frombuffer(msg.data, dtype).reshape(msg.height, msg.width).astype(np.float32)
    if not np.isfinite(z).all():
        raise ValueError(f"latent {msg.height}x{msg.width} holds NaN or inf")
    return z


def split_latent(
    rows: np.ndarray, want: tuple[int, int], readout_grid: int | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decoded rows -> latent [N, D] and, when the readout reads a finer encoder stage (its
    grid side ``readout_grid``; None: it reads the latent), its raw map [1, 4, G', G']
    (perception's, ``wm_core.models.readout.pack_map``); ValueError when the shape is not the
    model's ``want`` = (N, D)."""
    n, d = want
    if rows.shape[1] != d or (readout_grid is None and rows.shape[0] != n):
        raise ValueError(f"latent shape {rows.shape}, the model needs {want}")
    if readout_grid is None:
        return rows, None
    return unpack_map(rows, n, readout_grid)


def to_joints(
    kin: ArmKinematics,
    cell: Workcell,
    max_tool_step: float,
    q: np.ndarray,
    sent: np.ndarray | None,
    actions: np.ndarray,
) -> tuple[np.ndarray, list[bool], bool]:
    """Tool actions [P, 4] -> joint targets [P', 6], suction [P'] and whether it is a hold
    (P' <= P: the chain stops at the first IK failure; a failure at the first step holds at
    the measured joints ``q`` [6]). Each step starts from the last command the arm was sent
    (``sent`` [6], None when there is none or it is stale) or the measured joints
    (``wm_core.robot.action``)."""
    basis = basis_joints(kin, q, sent)  # [6]
    lo, hi = np.array(cell.workspace_lo), np.array(cell.workspace_hi)
    qs, on = [], []
    for a in actions:
        t = joint_target(kin, a, basis, lo, hi, max_tool_step)
        if not t.converged:
            break
        basis = t.q
        qs.append(basis)
        on.append(bool(a[3] > 0))
    if not qs:
        return q[None].copy(), [bool(actions[0, 3] > 0)], True
    return np.array(qs), on, False
