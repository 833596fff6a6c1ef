"""What the planner shows of its step, as standard messages, and back (for RViz, Foxglove and
the episode driver's annotated video and rerun recording).

- ``/wm/plan_markers`` (MarkerArray): the executed plan's tool path, namespace ``wm_plan``
  (id 0 a line strip, id 1 its points);
- ``/wm/detections`` (MarkerArray, stamped with the source image's stamp): a ``DELETEALL``
  first (a detection that is gone disappears), then, per object the readout detected, a sphere
  in namespace ``wm_detections`` (id = rank; its diameter grows with objectness and its colour
  alpha *is* the objectness) and a text label in ``wm_detection_labels``; the chosen target, a
  sphere in ``wm_target``; and in ``wm_status`` a text marker above the table whose lines are
  ``phase: <phase>``, ``surprise: <score>`` and, while the policy holds, ``hold: <why>``;
- ``/wm/safety/verdict`` (std_msgs/Header): published by the safety node after each arm
  command made from a planner command: ``stamp`` is that command's (the source image's),
  ``frame_id`` the filter's verdict (``ok``, ``clamped``, ``rejected``, ``held``);
- the plan's weighted cost terms go into the planner's ``/diagnostics`` as ``cost_<term>``
  (:func:`cost_values`).
"""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

PLAN_NS = "wm_plan"
DETECTION_NS = "wm_detections"
LABEL_NS = "wm_detection_labels"
TARGET_NS = "wm_target"
STATUS_NS = "wm_status"
COST_PREFIX = "cost_"


def _marker(ns: str, mid: int, kind: int, stamp, frame: str) -> Marker:
    m = Marker(ns=ns, id=mid, type=kind, action=Marker.ADD)
    m.header.stamp, m.header.frame_id = stamp, frame
    m.pose.orientation.w = 1.0
    return m


def _point(p) -> Point:
    return Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))


def plan_markers(path: np.ndarray, stamp, frame: str) -> MarkerArray:
    """The planned tool path [H, 3] as a line strip and points."""
    out = MarkerArray()
    for mid, kind in ((0, Marker.LINE_STRIP), (1, Marker.SPHERE_LIST)):
        m = _marker(PLAN_NS, mid, kind, stamp, frame)
        m.scale.x = m.scale.y = m.scale.z = 0.006 if kind == Marker.LINE_STRIP else 0.012
        m.color = ColorRGBA(r=0.1, g=0.8, b=0.2, a=1.0)
        m.points = [_point(p) for p in np.asarray(path, float).reshape(-1, 3)]
        out.markers.append(m)
    return out


def detection_markers(
    detections: np.ndarray,
    target: np.ndarray | None,
    phase: str,
    surprise: float,
    hold: str,
    stamp,
    frame: str,
    status_xyz: tuple[float, float, float] = (0.0, 0.0, 0.6),
) -> MarkerArray:
    """The readout's detections [M, 4] (x, y, z, objectness), the target [3] and the task
    status as a MarkerArray (see the module docstring)."""
    out = MarkerArray()
    clear = Marker(action=Marker.DELETEALL)
    clear.header.stamp, clear.header.frame_id = stamp, frame
    out.markers.append(clear)
    det = np.asarray(detections, float).reshape(-1, 4)
    for i, (x, y, z, p) in enumerate(det):
        m = _marker(DETECTION_NS, i, Marker.SPHERE, stamp, frame)
        m.pose.position = _point((x, y, z))
        m.scale.x = m.scale.y = m.scale.z = 0.02 + 0.03 * float(np.clip(p, 0.0, 1.0))
        m.color = ColorRGBA(r=0.0, g=0.9, b=1.0, a=float(np.clip(p, 0.0, 1.0)))
        out.markers.append(m)
        t = _marker(LABEL_NS, i, Marker.TEXT_VIEW_FACING, stamp, frame)
        t.pose.position = _point((x, y, z + 0.05))
        t.scale.z = 0.03
        t.color = ColorRGBA(r=0.0, g=0.9, b=1.0, a=1.0)
        t.text = f"{p:.2f}"
        out.markers.append(t)
    if target is not None:
        m = _marker(TARGET_NS, 0, Marker.SPHERE, stamp, frame)
        m.pose.position = _point(target)
        m.scale.x = m.scale.y = m.scale.z = 0.04
        m.color = ColorRGBA(r=1.0, g=0.0, b=1.0, a=0.6)
        out.markers.append(m)
    s = _marker(STATUS_NS, 0, Marker.TEXT_VIEW_FACING, stamp, frame)
    s.pose.position = _point(status_xyz)
    s.scale.z = 0.04
    s.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
    lines = [f"phase: {phase or '-'}", f"surprise: {surprise:.4g}"]
    s.text = "\n".join(lines + ([f"hold: {hold}"] if hold else []))
    out.markers.append(s)
    return out


def parse_detection_markers(msg: MarkerArray) -> dict:
    """A ``/wm/detections`` MarkerArray -> {"detections": [M, 4], "target": [3] or None,
    "phase": str, "surprise": float, "hold": str}. Markers it does not know are ignored."""
    det: dict[int, list[float]] = {}
    out: dict = {"target": None, "phase": "", "surprise": 0.0, "hold": ""}
    for m in msg.markers:
        if m.action != Marker.ADD:
            continue
        p = m.pose.position
        if m.ns == DETECTION_NS:
            det[m.id] = [p.x, p.y, p.z, float(m.color.a)]
        elif m.ns == TARGET_NS:
            out["target"] = np.array([p.x, p.y, p.z])
        elif m.ns == STATUS_NS:
            for line in m.text.splitlines():
                key, _, value = line.partition(": ")
                if key == "phase":
                    out["phase"] = "" if value == "-" else value
                elif key == "surprise":
                    out["surprise"] = _float(value, 0.0)
                elif key == "hold":
                    out["hold"] = value
    out["detections"] = np.array([det[k] for k in sorted(det)], float).reshape(-1, 4)
    return out


def _float(text: str, default: float) -> float:
    try:
        return float(text)
    except ValueError:
        return default


def parse_plan_markers(msg: MarkerArray) -> np.ndarray | None:
    """A ``/wm/plan_markers`` MarkerArray -> the tool path [H, 3], or None if it holds none."""
    for m in msg.markers:
        if m.ns == PLAN_NS and m.type == Marker.LINE_STRIP and m.action == Marker.ADD:
            return np.array([[q.x, q.y, q.z] for q in m.points], float).reshape(-1, 3)
    return None


def cost_values(breakdown: dict[str, float], total: float) -> dict[str, str]:
    """A plan's weighted cost terms -> diagnostics key/values ``cost_<term>`` (and
    ``cost_total``), 4 significant digits."""
    return {f"{COST_PREFIX}{k}": f"{float(v):.4g}" for k, v in breakdown.items()} | {
        f"{COST_PREFIX}total": f"{float(total):.4g}"
    }


def parse_cost_values(values: dict[str, str]) -> dict[str, float]:
    """The inverse of :func:`cost_values` on a diagnostics status's key/values."""
    out = {}
    for key, text in values.items():
        v = _float(text, float("nan")) if key.startswith(COST_PREFIX) else float("nan")
        if np.isfinite(v):
            out[key[len(COST_PREFIX) :]] = v
    return out
