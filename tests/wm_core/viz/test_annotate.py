"""The annotated episode video: size, frame count, and overlays where the camera model puts them."""

from __future__ import annotations

import numpy as np
import pytest

from wm_core.cell import sim_cell
from wm_core.viz.annotate import (
    DETECTION_RGB,
    TARGET_RGB,
    AnnotateConfig,
    EpisodeAnnotator,
    project_to_panel,
    write_annotated_video,
)
from wm_core.viz.record import StepRecord, verdict_of

GRAY = 90


def table_point(cell, u: float = 0.5, v: float = 0.5) -> np.ndarray:
    """A point on the table top, ``u``/``v`` of the way across its x/y extent [3]."""
    t = cell.table
    return np.array([t.x[0] + u * (t.x[1] - t.x[0]), t.y[0] + v * (t.y[1] - t.y[0]), t.top_z])


def records(n: int, det: np.ndarray, *, render: bool = False, size: int = 128):
    cell = sim_cell()
    img = np.full((size, size, 3), GRAY, np.uint8)
    return [
        StepRecord(
            step=i,
            t=0.1 * i,
            joint_pos=cell.arm.home_q,
            image=img,
            render=np.full((256, 256, 3), GRAY, np.uint8) if render else None,
            detections=det[None],
            phase="above",
            surprise=float(i),
            hold="surprise" if i == 2 else "",
            verdict=("ok", "clamped", "held", "rejected")[i % 4],
        )
        for i in range(n)
    ]


def test_video_size_frame_count_and_detection_pixels(tmp_path):
    """A known detection in the middle of the table: the decoded video has the detection's
    colour exactly where the cell's camera model projects it, in every frame."""
    iio = pytest.importorskip("imageio.v2")
    cell = sim_cell()
    det = np.array([*table_point(cell, 0.6, 0.4), 0.9])  # [4]
    recs = records(5, det)
    path = tmp_path / "ep.mp4"
    n, w, h = write_annotated_video(recs, cell, path, AnnotateConfig())
    assert (n, w, h) == (5, 512, 512 + 128)
    frames = [f for f in iio.get_reader(path)]  # noqa: C416 (list() asks the reader's length: inf)
    assert len(frames) == 5 and frames[0].shape == (640, 512, 3)
    uv, front = project_to_panel(cell.camera, det[None, :3], 512)
    assert front[0] and 0 <= uv[0, 0] < 512 and 24 <= uv[0, 1] < 512
    u, v = np.round(uv[0]).astype(int)
    for f in frames:
        centre = f[v - 1 : v + 2, u - 1 : u + 2].reshape(-1, 3).mean(0)  # the filled dot
        assert np.abs(centre - DETECTION_RGB).max() < 40, centre
        far = f[500, 20 if u > 256 else 490]  # the plain camera image, away from the overlay
        assert np.abs(far.astype(int) - GRAY).max() < 12, far


def test_target_marker_and_second_panel(tmp_path):
    cell = sim_cell()
    det = np.array([*table_point(cell, 0.3, 0.7), 0.6])
    recs = records(3, det, render=True)
    recs = [
        StepRecord(**{**r.__dict__, "target": det[:3]})  # the same object, chosen
        for r in recs
    ]
    ann = EpisodeAnnotator(recs, cell, AnnotateConfig(panel_px=256, strip_px=96))
    frame = ann.frame(0)  # [352, 512, 3]: camera panel + render panel, strip under them
    assert frame.shape == (256 + 96, 512, 3) and ann.panels == 2
    uv, _ = project_to_panel(cell.camera, det[None, :3], 256)
    u, v = np.round(uv[0]).astype(int)
    for x0 in (0, 256):  # the same overlay on both panels
        patch = frame[v - 6 : v + 7, x0 + u - 6 : x0 + u + 7].reshape(-1, 3).astype(int)
        assert (np.abs(patch - TARGET_RGB).max(1) < 30).any()  # the target's cross
        assert (np.abs(patch - DETECTION_RGB).max(1) < 30).any()  # and the detection


def test_strip_chart_marks_holds_and_verdicts():
    cell = sim_cell()
    recs = records(4, np.array([*table_point(cell), 0.8]))
    ann = EpisodeAnnotator(recs, cell, AnnotateConfig(panel_px=256))
    strip = ann._strip  # [128, 256, 3]
    tick_row = strip[-6]
    xs = [ann._x(i) for i in range(4)]
    colours = [tuple(int(c) for c in tick_row[x]) for x in xs]
    assert len(set(colours)) == 4  # ok, clamped, held, rejected: four colours
    hold_col = strip[40:80, xs[2]]  # step 2 held: shaded
    free_col = strip[40:80, xs[0] + 1]
    assert hold_col.mean() > free_col.mean() + 20


def test_bad_records_are_clear_errors():
    cell = sim_cell()
    with pytest.raises(ValueError, match="joint_pos"):
        StepRecord(step=0, t=0.0, joint_pos=[0.0] * 5)
    with pytest.raises(ValueError, match="verdict"):
        StepRecord(step=0, t=0.0, joint_pos=cell.arm.home_q, verdict="fine")
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        StepRecord(step=0, t=0.0, joint_pos=cell.arm.home_q, image=np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        StepRecord(step=0, t=0.0, joint_pos=cell.arm.home_q, detections=[[0, 0, np.nan, 1]])
    with pytest.raises(ValueError, match="multiple of 16"):
        AnnotateConfig(panel_px=500)
    with pytest.raises(ValueError, match="no step records"):
        EpisodeAnnotator([], cell)
    assert verdict_of("hold_stale") == "held" and verdict_of("estop") == "held"
    assert verdict_of("clamped") == "clamped"
    with pytest.raises(ValueError, match="filter status"):
        verdict_of("maybe")
