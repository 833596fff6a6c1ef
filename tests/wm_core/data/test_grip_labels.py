"""The robot's own object labels from its grips (wm_core.data.grip_labels), on made-up cup paths
whose objects' true positions are known."""

from __future__ import annotations

import numpy as np
import pytest

from wm_core.cell import PYBULLET_CELL_FILE, load_cell
from wm_core.data.grip_labels import GripLabelConfig, holds, scene_labels

CELL = load_cell(PYBULLET_CELL_FILE)
Z0 = CELL.table.top_z
BIN = np.array([*CELL.bin.center, Z0 + 0.15])  # above the bin


def path(*legs: tuple[np.ndarray, int]) -> np.ndarray:
    """Straight legs: (end point, frames to get there), from the first point."""
    pts = [np.asarray(legs[0][0], float)]
    for end, n in legs[1:]:
        start = pts[-1]
        pts += [start + (np.asarray(end) - start) * (k + 1) / n for k in range(n)]
    return np.array(pts)  # [T, 3]


def scene(regrip_shift: float = 0.0):
    """Two objects: A gripped and carried to the bin; B gripped, let go on the table beside
    where it stood, gripped again there (``regrip_shift`` m off centre) and carried to the bin.
    -> tool [T, 3], held [T], A's and B's true centres, and where B was set down."""
    a = np.array([0.45, -0.10, Z0 + 0.02])  # half height 2 cm
    b = np.array([0.55, 0.10, Z0 + 0.03])  # 3 cm
    top_a, top_b = a + [0, 0, 0.02], b + [0, 0, 0.03]
    b2_top = top_b + [0.0, 0.08, 0.0]  # where B is let go, then gripped again
    home = np.array([0.4, 0.0, Z0 + 0.3])
    legs = [
        (home, 0),
        (top_a + [0, 0, 0.1], 10),
        (top_a, 5),  # frame 15: touch A
        (top_a + [0, 0, 0.1], 5),
        (BIN, 15),  # frame 35: over the bin
        (top_b + [0, 0, 0.1], 15),
        (top_b, 5),  # frame 55: touch B
        (b2_top + [0, 0, 0.02], 10),
        (b2_top, 2),  # frame 67: set down
        (b2_top + [regrip_shift, 0, 0.1], 5),
        (b2_top + [regrip_shift, 0, 0], 5),  # frame 77: grip again
        (BIN, 15),  # frame 92
        (home, 10),
    ]
    tool = path(*legs)
    held = np.zeros(len(tool), bool)
    held[15:36] = True  # A: grip at 15, let go after 35
    held[55:68] = True  # B: grip at 55, let go after 67
    held[77:93] = True  # B again, let go after 92 over the bin
    return tool, held, a, b, b2_top - [0, 0, 0.03]


def test_an_explained_scene_labels_every_object_at_every_frame():
    tool, held, a, b, b_moved = scene()
    got = scene_labels(tool, held, CELL, n_objects=2)
    assert got.explained and got.reason == ""
    assert (got.grips, got.objects_found, got.in_bin) == (3, 2, 2)
    pos = got.object_pos  # [T, 2, 3]
    assert pos.shape == (len(tool), 2, 3) and pos.dtype == np.float32
    np.testing.assert_allclose(pos[:15, 0], np.tile(a, (15, 1)), atol=1e-6)  # A stood there
    np.testing.assert_allclose(pos[:55, 1], np.tile(b, (55, 1)), atol=1e-6)  # B stood there
    np.testing.assert_allclose(pos[25, 0], tool[25] - [0, 0, 0.02], atol=1e-6)  # A with the cup
    # A in the bin, on its floor (the table top) at its own half height, from frame 36 on
    np.testing.assert_allclose(pos[36:, 0, 2], Z0 + 0.02, atol=1e-6)
    x, y = pos[-1, 0, :2]
    assert abs(x - CELL.bin.center[0]) <= CELL.bin.inner_half
    assert abs(y - CELL.bin.center[1]) <= CELL.bin.inner_half
    # B let go on the table: lying there until gripped again, the same object
    np.testing.assert_allclose(pos[68:77, 1], np.tile(b_moved, (9, 1)), atol=1e-6)
    np.testing.assert_allclose(pos[-1, 1, 2], Z0 + 0.03, atol=1e-6)


def test_a_scene_with_an_object_never_gripped_gets_no_labels():
    tool, held, *_ = scene()
    got = scene_labels(tool, held, CELL, n_objects=3)
    assert not got.explained and got.object_pos is None
    assert "found 2 object(s), the annotation says 3" in got.reason
    assert "never gripped" in got.reason


def test_a_grip_that_matches_no_object_is_refused_not_guessed():
    """B set down and picked up again 3 cm off: the same object within match_radius_m
    (5 cm), a third object to the labeller beyond it (1 cm), against 2 annotated."""
    tool, held, *_ = scene(regrip_shift=0.03)
    assert scene_labels(tool, held, CELL, 2).explained
    got = scene_labels(tool, held, CELL, 2, GripLabelConfig(match_radius_m=0.01))
    assert not got.explained and "a grip matched no object" in got.reason


def test_switch_chatter_is_not_a_grip_and_a_hold_may_last_to_the_end():
    assert holds(np.array([0, 1, 0, 0, 1, 1, 1, 0, 1, 1], bool), 2) == [(4, 7), (8, 10)]
    tool, held, *_ = scene()
    held[5] = True  # one frame of chatter, far from any object
    assert scene_labels(tool, held, CELL, 2).explained
    cut = 85  # the recording ends while B is held
    got = scene_labels(tool[:cut], held[:cut], CELL, 2)
    assert got.explained and got.in_bin == 1
    np.testing.assert_allclose(got.object_pos[-1, 1], tool[cut - 1] - [0, 0, 0.03], atol=1e-6)


@pytest.mark.parametrize(
    "tool, held, n, match",
    [
        (np.zeros((5, 2)), np.zeros(5, bool), 1, "must be"),
        (np.zeros((5, 3)), np.zeros(4, bool), 1, "must be"),
        (np.zeros((5, 3)), np.zeros(5, bool), 0, "n_objects"),
    ],
)
def test_bad_input_is_refused(tool, held, n, match):
    with pytest.raises(ValueError, match=match):
        scene_labels(tool, held, CELL, n)
