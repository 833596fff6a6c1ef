import numpy as np

from wm_core.cell import sim_cell
from wm_core.eval.detection import score_detections


def test_detections_are_matched_one_to_one_and_bin_detections_ignored():
    cell = sim_cell()
    bx, by = cell.bin.center
    truth = [np.array([[0.4, 0.0, 0.02], [0.5, 0.1, 0.02]])]
    found = [
        np.array(
            [
                [0.41, 0.0, 0.02, 0.9],  # 1 cm from the first object
                [0.7, -0.3, 0.02, 0.8],  # nowhere near an object: false
                [bx, by, 0.02, 0.9],  # in the bin: not a table detection
            ]
        )
    ]
    s = score_detections(found, truth, cell, match_m=0.04)
    assert s == {"recall": 0.5, "false_per_frame": 1.0, "err_cm": 1.0}
    # two objects whose nearest detection is the same one: one is found, one is missed
    close = [np.array([[0.4, 0.0, 0.02], [0.42, 0.0, 0.02]])]
    s = score_detections([np.array([[0.41, 0.0, 0.02, 0.9]])], close, cell)
    assert s["recall"] == 0.5 and s["false_per_frame"] == 0.0
    assert score_detections([np.zeros((0, 4))], truth, cell) == {
        "recall": 0.0,
        "false_per_frame": 0.0,
        "err_cm": None,
    }
