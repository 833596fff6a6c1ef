"""wm_bringup.vizmsgs and episode_view: what the planner shows, as messages and back, and the
episode driver's join of it onto camera frames. Pure message objects: no DDS."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")

from builtin_interfaces.msg import Time  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402
from wm_bringup.episode_view import ViewLog, build_records  # noqa: E402
from wm_bringup.vizmsgs import (  # noqa: E402
    cost_values,
    detection_markers,
    parse_cost_values,
    parse_detection_markers,
    parse_plan_markers,
    plan_markers,
)

STAMP = Time(sec=3, nanosec=500)


def test_detections_round_trip():
    det = np.array([[0.5, 0.1, 0.02, 0.93], [0.4, -0.2, 0.03, 0.55]])  # [M, 4]
    msg = detection_markers(det, np.array([0.5, 0.1, 0.02]), "descend", 1.25, "", STAMP, "world")
    assert msg.markers[0].action == Marker.DELETEALL  # stale detections disappear in RViz
    assert all(m.header.frame_id == "world" for m in msg.markers)
    assert all((m.header.stamp.sec, m.header.stamp.nanosec) == (3, 500) for m in msg.markers)
    got = parse_detection_markers(msg)
    np.testing.assert_allclose(got["detections"], det, atol=1e-6)
    np.testing.assert_allclose(got["target"], [0.5, 0.1, 0.02])
    assert (got["phase"], got["surprise"], got["hold"]) == ("descend", 1.25, "")
    held = parse_detection_markers(
        detection_markers(np.zeros((0, 4)), None, "above", 9.0, "surprise", STAMP, "world")
    )
    assert held["detections"].shape == (0, 4) and held["target"] is None
    assert held["hold"] == "surprise" and held["surprise"] == 9.0


def test_plan_markers_and_costs_round_trip():
    path = np.linspace([0.3, 0.0, 0.3], [0.5, 0.1, 0.2], 6)  # [H, 3]
    np.testing.assert_allclose(parse_plan_markers(plan_markers(path, STAMP, "world")), path)
    assert parse_plan_markers(MarkerArray()) is None
    kv = cost_values({"goal": 0.123456, "collision": 0.0}, 0.5)
    assert kv == {"cost_goal": "0.1235", "cost_collision": "0", "cost_total": "0.5"}
    assert parse_cost_values(kv | {"plans": "4", "cost_bad": "x"}) == {
        "goal": 0.1235,
        "collision": 0.0,
        "total": 0.5,
    }


def test_episode_view_joins_on_the_frame_stamp():
    img = np.zeros((8, 8, 3), np.uint8)
    q = np.zeros(6)
    ns = 1_000_000_000
    frames = [(ns * k // 10, img) for k in range(0, 5)]  # 0.0 .. 0.4 s
    view = ViewLog()
    view.joints = [(0, q), (ns * 2 // 10, q + 0.1)]
    det = detection_markers(np.array([[0.5, 0, 0.02, 0.8]]), None, "above", 0.5, "", STAMP, "w")
    view.views[ns * 2 // 10] = parse_detection_markers(det)
    view.plans[ns * 2 // 10] = np.zeros((3, 3))
    view.verdicts[ns * 2 // 10] = "clamped"
    view.verdicts[ns * 3 // 10] = "surely-not-a-verdict"
    view.costs = [(ns // 10, {"goal": 2.0})]
    recs = build_records(frames, view, start_ns=ns // 10)  # the frame at 0.0 s is before it
    assert [r.step for r in recs] == [0, 1, 2, 3]
    assert [round(r.t, 3) for r in recs] == [0.0, 0.1, 0.2, 0.3]
    r = recs[1]  # the frame at 0.2 s: planned on
    assert r.phase == "above" and r.verdict == "clamped" and r.costs == {"goal": 2.0}
    np.testing.assert_allclose(r.joint_pos, q + 0.1)
    assert len(r.detections) == 1 and r.tool_path.shape == (3, 3)
    assert recs[0].phase == "" and recs[0].verdict == "" and recs[0].tool_path is None
    assert recs[2].verdict == ""  # an unknown verdict string is not drawn as one
