"""A rerun recording (``.rrd``) of an episode, written with the SDK's file sink.

No viewer and no network: ``rerun FILE.rrd`` opens the file afterwards. One recording, two
timelines that advance together (``step``: the control step; ``sim_time``: simulated seconds).

Entity paths (:data:`ENTITY_PATHS`):

- ``world/table``, ``world/bin``, ``world/keepout``, ``world/obstacles``: the cell (static);
- ``world/camera``: the cell's camera model (pose + pinhole, static) and ``world/camera/image``,
  the policy's camera image: the viewer projects the 3-D entities into it;
- ``world/detections``: the readout's objects as 3-D points (radius and label: objectness);
- ``world/target``: the chosen object; ``world/subgoal``: the tool subgoal;
- ``world/tool/planned``: the executed plan's tool path; ``world/tool/measured``: the tool
  (forward kinematics of the measured joints) and ``world/tool/measured_path``, its trail;
- ``world/arm/capsules``: the arm's collision capsules (``wm_core.robot.capsules``);
- ``robot/joints/<name>``: joint positions (rad);
- ``plan/cost/<term>``: the weighted cost terms of each plan, and ``plan/cost/total``;
- ``surprise/score`` and ``surprise/hold`` (1 while the policy holds);
- ``task/phase``: the task phase (a text log);
- ``safety/verdict``: the filter's verdict (a text log) and ``safety/verdict_code``
  (0 ok, 1 clamped, 2 rejected, 3 held).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from wm_core.cell import Workcell
from wm_core.robot import ArmKinematics
from wm_core.robot.capsules import ArmCapsules
from wm_core.viz.annotate import DETECTION_RGB, PATH_RGB, TARGET_RGB, VERDICT_RGB
from wm_core.viz.record import VERDICTS, StepRecord

log = logging.getLogger(__name__)

ENTITY_PATHS = (
    "world/table",
    "world/bin",
    "world/camera",
    "world/camera/image",
    "world/detections",
    "world/target",
    "world/subgoal",
    "world/tool/planned",
    "world/tool/measured",
    "world/tool/measured_path",
    "world/arm/capsules",
    "robot/joints",
    "plan/cost",
    "surprise/score",
    "surprise/hold",
    "task/phase",
    "safety/verdict",
    "safety/verdict_code",
)
"""Where each kind of data is logged (prefixes: ``robot/joints/<name>``, ``plan/cost/<term>``)."""


class RerunUnavailableError(RuntimeError):
    """The rerun SDK is not installed."""


def _rerun():
    try:
        import rerun as rr
    except ImportError as exc:  # pinned in requirements.txt; a partial install lacks it
        raise RerunUnavailableError(
            f"--rerun needs the rerun-sdk package ({exc}); run `make setup`"
        ) from None
    return rr


def quaternions_z_to(d: np.ndarray) -> np.ndarray:
    """Unit directions [C, 3] -> quaternions [C, 4] (x, y, z, w) turning +z onto each."""
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(z, d)  # [C, 3]
    s = np.linalg.norm(axis, axis=1)  # [C] sin(angle)
    c = d @ z  # [C] cos(angle)
    angle = np.arctan2(s, c)
    axis = np.where(s[:, None] > 1e-9, axis / np.maximum(s, 1e-12)[:, None], [1.0, 0.0, 0.0])
    return np.concatenate([axis * np.sin(angle / 2)[:, None], np.cos(angle / 2)[:, None]], 1)


def capsule_geometry(capsules: ArmCapsules, q: np.ndarray):
    """q [6] -> (lengths [C], radii [C], start points [C, 3], quaternions [C, 4])."""
    with torch.no_grad():
        ends, _ = capsules(torch.as_tensor(q, dtype=torch.float32)[None])  # [1, C, 2, 3]
    a, b = ends[0, :, 0].numpy().astype(float), ends[0, :, 1].numpy().astype(float)  # [C, 3]
    v = b - a
    length = np.linalg.norm(v, axis=1)  # [C]
    d = np.where(length[:, None] > 1e-9, v / np.maximum(length, 1e-12)[:, None], [0, 0, 1.0])
    return length, capsules.radii.numpy().astype(float), a, quaternions_z_to(d)


def _box(rr, lo, hi, color):
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    return rr.Boxes3D(centers=[(lo + hi) / 2], half_sizes=[(hi - lo) / 2], colors=[color])


def _log_cell(rr, rec, cell: Workcell, image_wh: tuple[int, int] | None) -> None:
    t, b = cell.table, cell.bin
    lo = np.array([t.x[0], t.y[0], t.top_z - t.thickness])
    hi = np.array([t.x[1], t.y[1], t.top_z])
    rec.log("world/table", _box(rr, lo, hi, (150, 120, 90)), static=True)
    r = b.inner_half + b.wall_thickness
    lo = np.array([b.center[0] - r, b.center[1] - r, t.top_z])
    hi = np.array([b.center[0] + r, b.center[1] + r, t.top_z + b.wall_height])
    rec.log("world/bin", _box(rr, lo, hi, (60, 90, 200)), static=True)
    for name, boxes, color in (
        ("world/keepout", cell.keepout_boxes, (230, 60, 60)),
        ("world/obstacles", cell.obstacles, (120, 120, 120)),
    ):
        for i, box in enumerate(boxes):
            rec.log(f"{name}/{i}", _box(rr, box[0], box[1], color), static=True)
    cam = cell.camera
    pose = cam.pose  # [4, 4] OpenCV optical frame in the world
    rec.log(
        "world/camera",
        rr.Transform3D(translation=pose[:3, 3], mat3x3=pose[:3, :3]),
        static=True,
    )
    w, h = image_wh or (cam.width, cam.height)
    rec.log(
        "world/camera",
        rr.Pinhole(
            image_from_camera=cam.k_for(w, h),
            resolution=[w, h],
            camera_xyz=rr.ViewCoordinates.RDF,
        ),
        static=True,
    )


def write_rrd(
    records: Sequence[StepRecord],
    cell: Workcell,
    path: Path,
    *,
    app_id: str = "wm",
    name: str = "episode 0",
    joint_names: Sequence[str] | None = None,
) -> Path:
    """Log the episode's records to ``path`` (an .rrd file) and close it. Returns ``path``."""
    if not records:
        raise ValueError("no step records to record")
    rr = _rerun()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    kin = ArmKinematics(base_pose=cell.arm.T_world_base)
    capsules = ArmCapsules(kin.arm, base_pose=kin.base_pose)
    names = list(joint_names or cell.arm.joint_names)
    rec = rr.RecordingStream(app_id, recording_id=f"{app_id}-{path.stem}")
    rec.save(path)
    try:
        rec.send_recording_name(name)
        first_img = next((r.image for r in records if r.image is not None), None)
        wh = None if first_img is None else (first_img.shape[1], first_img.shape[0])
        _log_cell(rr, rec, cell, wh)
        trail: list[np.ndarray] = []
        for r in records:
            rec.set_time("step", sequence=r.step)
            rec.set_time("sim_time", duration=float(r.t))
            if r.image is not None:
                rec.log("world/camera/image", rr.Image(r.image))
            det = r.detections  # [M, 4]
            rec.log(
                "world/detections",
                rr.Points3D(
                    det[:, :3],
                    radii=0.008 + 0.012 * np.clip(det[:, 3], 0, 1),
                    colors=[DETECTION_RGB] * len(det),
                    labels=[f"{p:.2f}" for p in det[:, 3]],
                ),
            )
            if r.target is not None:
                rec.log("world/target", rr.Points3D([r.target], radii=0.02, colors=[TARGET_RGB]))
            else:
                rec.log("world/target", rr.Clear(recursive=False))
            if r.subgoal is not None:
                rec.log("world/subgoal", rr.Points3D([r.subgoal], radii=0.01))
            if r.tool_path is not None and len(r.tool_path):
                rec.log(
                    "world/tool/planned",
                    rr.LineStrips3D([r.tool_path], colors=[PATH_RGB], radii=0.003),
                )
            else:
                rec.log("world/tool/planned", rr.Clear(recursive=False))
            tool = kin.tool_position(r.joint_pos)  # [3]
            trail.append(tool)
            rec.log("world/tool/measured", rr.Points3D([tool], radii=0.01))
            length, radii, start, quat = capsule_geometry(capsules, r.joint_pos)
            rec.log(
                "world/arm/capsules",
                rr.Capsules3D(lengths=length, radii=radii, translations=start, quaternions=quat),
            )
            for jn, v in zip(names, r.joint_pos, strict=True):
                rec.log(f"robot/joints/{jn}", rr.Scalars(float(v)))
            for term, v in r.costs.items():
                rec.log(f"plan/cost/{term}", rr.Scalars(float(v)))
            rec.log("surprise/score", rr.Scalars(float(r.surprise)))
            rec.log("surprise/hold", rr.Scalars(1.0 if r.hold else 0.0))
            rec.log("task/phase", rr.TextLog(r.phase or "-"))
            if r.verdict:
                level = "INFO" if r.verdict in ("ok", "clamped") else "WARN"
                rec.log("safety/verdict", rr.TextLog(r.verdict, level=level))
                rec.log(
                    "safety/verdict_code",
                    rr.Scalars(float(VERDICTS.index(r.verdict))),
                )
        rec.log(
            "world/tool/measured_path",
            rr.LineStrips3D([np.array(trail)], radii=0.002, colors=[VERDICT_RGB["held"]]),
            static=True,
        )
        rec.flush()
    finally:
        rec.disconnect()
    log.info("rerun recording: %d steps -> %s", len(records), path)
    return path


def entity_paths(path: Path) -> dict[str, int]:
    """The entity paths of an .rrd file (no leading slash) -> rows logged (reads it with the
    SDK; used by the tests and handy for checking a file)."""
    _rerun()
    from rerun.chunk import RrdReader

    out: dict[str, int] = {}
    for chunk in RrdReader(Path(path)).store().stream():
        p = chunk.entity_path.lstrip("/")
        out[p] = out.get(p, 0) + chunk.num_rows
    return out
