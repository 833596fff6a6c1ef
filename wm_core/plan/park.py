"""Where to park the arm so that the scene camera sees the whole pick area.

Before the task layer declares the table clear it parks the arm and re-reads the table
(``wm_core.plan.task``): an object hidden behind the arm, or one the readout half-missed
while the arm moved over it, gets a second look. The park pose comes from what the brain
knows and nothing else: the cell file (camera pose and intrinsics, table, workspace, bin,
keep-outs) and the arm's kinematics and collision capsules from the URDF (``wm_core.robot``).
Never from the simulator.

For candidate tool positions (tool pointing down) on rings around the base, and the home
pose's tool position if it lies in the workspace, the tool-down IK
gives a joint configuration; the arm's capsules are sampled, projected into the camera, and
every table point of the pick area that lies behind a projected capsule (closer to the
camera, within its image radius plus a margin) counts as occluded. The candidate with the
smallest occluded fraction wins; ties go to the shortest trip from the home pose.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np
import torch

from wm_core.cell import Workcell
from wm_core.robot import ArmKinematics
from wm_core.robot.capsules import ArmCapsules, capsule_points

log = logging.getLogger(__name__)

REGION_STEP = 0.03  # m between the table points of the pick area that are checked
REGION_Z = 0.025  # m above the table top: a typical object centre
MARGIN_PX = 12.0  # px (at the camera's native size) added to each capsule's image radius: the
# readout reads each patch with its 3x3 neighbourhood, so an arm next to an object matters too
CAPSULE_SAMPLES = 9  # points along each capsule's axis
RING_RADII = (0.30, 0.38, 0.46, 0.54)  # m from the base axis
RING_BEARINGS = 36  # candidate bearings around the base
HEIGHTS = (0.22, 0.32, 0.42)  # m above the table top
TIE = 0.005  # occluded fractions closer than this are a tie


@dataclass(frozen=True)
class ParkPose:
    tool: np.ndarray  # [3] tool position (m, world)
    q: np.ndarray  # [6] the IK's joint configuration for it (from the home pose)
    occluded: float  # fraction of the pick area hidden by the arm there
    home_occluded: float  # the same fraction at the home pose, for the log


def pick_area(cell: Workcell, min_radius: float) -> np.ndarray:
    """Table points [P, 3] where an object could be picked: on the table, inside the tool
    workspace in xy, outside the bin, at least ``min_radius`` from the base axis, and in the
    camera's image."""
    t, lo, hi = cell.table, cell.workspace_lo, cell.workspace_hi
    xs = np.arange(max(t.x[0], lo[0]), min(t.x[1], hi[0]) + 1e-9, REGION_STEP)
    ys = np.arange(max(t.y[0], lo[1]), min(t.y[1], hi[1]) + 1e-9, REGION_STEP)
    gx, gy = np.meshgrid(xs, ys)
    pts = np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, t.top_z + REGION_Z)], 1)  # [P, 3]
    keep = np.hypot(*(pts[:, :2] - cell.base_xy).T) >= min_radius
    keep &= np.array([not cell.bin.contains_xy(p[:2]) for p in pts])
    uvz = cell.camera.project(pts)  # [P, 3]
    cam = cell.camera
    keep &= (uvz[:, 2] > 0) & (uvz[:, 0] >= 0) & (uvz[:, 0] < cam.width)
    keep &= (uvz[:, 1] >= 0) & (uvz[:, 1] < cam.height)
    return pts[keep]


def occluded_fraction(cell: Workcell, caps: ArmCapsules, q: np.ndarray, area: np.ndarray):
    """Joint configurations q [B, 6] -> the fraction [B] of the pick area points [P, 3] that
    the arm hides from the camera."""
    with torch.no_grad():
        ends, _ = caps(torch.as_tensor(q, dtype=torch.float32))  # [B, C, 2, 3]
        pts = capsule_points(ends, CAPSULE_SAMPLES).numpy().astype(float)  # [B, C, n, 3]
    b, c, n, _ = pts.shape
    radii = np.repeat(caps.radii.numpy().astype(float), n)  # [C*n]
    cam = cell.camera
    f = cam.k_matrix[0, 0]
    arm = cam.project(pts.reshape(b, c * n, 3))  # [B, C*n, 3]: u, v, depth
    tab = cam.project(area)  # [P, 3]
    depth = np.maximum(arm[..., 2], 1e-3)  # [B, C*n]
    rad_px = radii * f / depth + MARGIN_PX  # [B, C*n]
    d = np.linalg.norm(arm[:, :, None, :2] - tab[None, None, :, :2], axis=-1)  # [B, C*n, P]
    hidden = (d < rad_px[..., None]) & (arm[:, :, None, 2] < tab[None, None, :, 2])
    hidden &= arm[:, :, None, 2] > 0
    return hidden.any(axis=1).mean(axis=1)  # [B]


def _inside(cell: Workcell, p: np.ndarray) -> bool:
    lo, hi = np.asarray(cell.workspace_lo), np.asarray(cell.workspace_hi)
    if np.any(p < lo) or np.any(p > hi):
        return False
    return not any(np.all(p >= b_lo) and np.all(p <= b_hi) for b_lo, b_hi in cell.keepout_boxes)


@functools.lru_cache(maxsize=8)
def park_pose(cell: Workcell, min_radius: float) -> ParkPose:
    """The tool position [3] (tool down) from which the arm hides the least of the pick area.
    Computed once per cell (about a second)."""
    kin = ArmKinematics(base_pose=cell.arm.T_world_base)
    caps = ArmCapsules(base_pose=cell.arm.T_world_base)
    area = pick_area(cell, min_radius)
    home = np.asarray(cell.arm.home_q, float)  # [6]
    home_tool = kin.tool_position(home)  # [3]
    tools, qs = [], []
    if _inside(cell, home_tool):  # the home pose itself, if the workspace allows it
        tools.append(home_tool)
        qs.append(home)
    for r in RING_RADII:
        for th in np.linspace(-np.pi, np.pi, RING_BEARINGS, endpoint=False):
            for h in HEIGHTS:
                p = np.array([*(cell.base_xy + r * np.array([np.cos(th), np.sin(th)])), 0.0])
                p[2] = cell.table.top_z + h
                if not _inside(cell, p) or cell.bin.contains_xy(p[:2], 0.05):
                    continue
                ik = kin.ik_tool_down(p, home, iters=60)
                if ik.converged:
                    tools.append(p)
                    qs.append(ik.q)
    if not tools:
        raise ValueError(f"cell {cell.name!r}: no reachable tool-down park pose in the workspace")
    tools_a, qs_a = np.array(tools), np.array(qs)  # [K, 3], [K, 6]
    occ = occluded_fraction(cell, caps, qs_a, area)  # [K]
    best = occ.min()
    tied = np.flatnonzero(occ <= best + TIE)
    i = int(tied[np.argmin(np.linalg.norm(tools_a[tied] - home_tool, axis=1))])
    home_occ = float(occluded_fraction(cell, caps, home[None], area)[0])
    pose = ParkPose(tools_a[i].copy(), qs_a[i].copy(), float(occ[i]), home_occ)
    log.info(
        "park pose %s: the arm hides %.1f%% of the pick area there (%.1f%% at home; %d candidates)",
        np.round(pose.tool, 3),
        100 * pose.occluded,
        100 * home_occ,
        len(tools),
    )
    return pose
