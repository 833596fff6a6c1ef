"""The rerun recording: written with the file sink, read back with the SDK."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rerun")

from wm_core.cell import sim_cell  # noqa: E402
from wm_core.robot.capsules import ArmCapsules  # noqa: E402
from wm_core.viz.record import StepRecord  # noqa: E402
from wm_core.viz.rerun_log import (  # noqa: E402
    capsule_geometry,
    entity_paths,
    quaternions_z_to,
    write_rrd,
)


def test_rrd_holds_the_expected_entities(tmp_path):
    cell = sim_cell()
    q = np.array(cell.arm.home_q)
    recs = [
        StepRecord(
            step=i,
            t=0.1 * i,
            joint_pos=q,
            image=np.full((32, 32, 3), 100, np.uint8),
            detections=[[0.5, 0.0, 0.02, 0.9], [0.6, 0.1, 0.02, 0.7]],
            target=[0.5, 0.0, 0.02],
            subgoal=[0.5, 0.0, 0.2],
            tool_path=np.linspace([0.4, 0.0, 0.3], [0.5, 0.0, 0.2], 5),
            phase="above",
            surprise=0.5,
            hold="surprise" if i == 1 else "",
            verdict="ok",
            costs={"goal": 1.0, "collision": 0.0, "total": 1.0},
        )
        for i in range(3)
    ]
    path = write_rrd(recs, cell, tmp_path / "ep.rrd")
    paths = entity_paths(path)
    per_step = [
        "world/camera/image",
        "world/detections",
        "world/target",
        "world/tool/planned",
        "world/tool/measured",
        "world/arm/capsules",
        "plan/cost/goal",
        "plan/cost/total",
        "surprise/score",
        "surprise/hold",
        "task/phase",
        "safety/verdict",
        *(f"robot/joints/{n}" for n in cell.arm.joint_names),
    ]
    for p in per_step:
        assert paths.get(p) == 3, (p, paths.get(p))
    for p in ("world/table", "world/bin", "world/camera", "world/tool/measured_path"):
        assert paths.get(p, 0) >= 1, p


def test_capsule_quaternions_point_along_the_links():
    d = np.array([[0, 0, 1.0], [1.0, 0, 0], [0, 0, -1.0], [0.6, 0.0, 0.8]])
    quat = quaternions_z_to(d)  # [4, 4] xyzw
    for qv, want in zip(quat, d, strict=True):
        x, y, z, w = qv
        rot = np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
            ]
        )
        np.testing.assert_allclose(rot @ [0, 0, 1.0], want, atol=1e-9)
    cell = sim_cell()
    caps = ArmCapsules(base_pose=cell.arm.T_world_base)
    length, radii, start, quat = capsule_geometry(caps, np.array(cell.arm.home_q))
    assert len(length) == len(radii) == len(start) == len(quat) == len(caps.radii)
    assert (length >= 0).all() and np.allclose(np.linalg.norm(quat, axis=1), 1.0)


def test_no_records_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no step records"):
        write_rrd([], sim_cell(), tmp_path / "x.rrd")
