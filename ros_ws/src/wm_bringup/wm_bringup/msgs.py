"""Message <-> array conversions shared by the nodes, and the suction convention.

**Suction convention.** There is no standard suction message, so the suction cup is a
pseudo-joint named ``suction_cup``: in ``/joint_states`` its position is 0.0 (off) or 1.0 (on),
and a ``JointTrajectory`` may carry it as an extra joint whose point positions are 0.0/1.0
(> 0.5 means on). The arm joints are matched by name, in any order (joint_trajectory_controller
convention); the names are the URDF's (``wm_core.robot``) unless the nodes' ``joint_names``
parameter renames them for an arm whose driver calls them otherwise (the order stays the URDF's).

**The vacuum switch.** Whether the cup holds something (a real suction gripper's "object
detected" / vacuum-OK signal) is ``std_msgs/Bool`` on ``/suction/holding``
(:data:`SUCTION_HOLDING_TOPIC`), published by both simulated worlds at every step. The stack
does not act on it; ``wm record`` records it and ``wm import-bag`` turns its rising edges into
the robot's own object labels (:mod:`wm_core.data.grip_labels`). On a real arm, publish your
gripper's switch there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from builtin_interfaces.msg import Duration, Time
from sensor_msgs.msg import CameraInfo, JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from wm_core.robot.urdf import load_arm

SUCTION_JOINT = "suction_cup"
SUCTION_HOLDING_TOPIC = "/suction/holding"
"""The suction cup's vacuum switch (std_msgs/Bool): true while the cup holds an object."""
REFERENCE_TOPIC = "/arm_controller/reference"
"""The arm controller's reference (desired) joint positions (sensor_msgs/JointState), as a
joint_trajectory_controller reports them in ~/controller_state; wm_sim publishes it."""


def publisher_of(info: Mapping[str, Any] | None) -> bytes | None:
    """The publisher's gid from a subscription callback's ``MessageInfo`` (None where the
    middleware reports none)."""
    gid = None if info is None else info.get("publisher_gid")
    if not gid or not gid.get("data"):
        return None
    return bytes(gid["data"])


def camera_info(
    k: np.ndarray, width: int, height: int, d: Sequence[float], stamp: Any, frame: str
) -> CameraInfo:
    """sensor_msgs/CameraInfo of a plumb_bob camera: intrinsics ``k`` [3, 3] at ``width`` x
    ``height``, distortion ``d`` (5), no rectification (R = I, P = [K | 0])."""
    k = np.asarray(k, float)
    msg = CameraInfo(height=int(height), width=int(width), distortion_model="plumb_bob")
    msg.header.stamp, msg.header.frame_id = stamp, frame
    msg.d = [float(x) for x in d]
    msg.k = [float(x) for x in k.reshape(-1)]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [float(x) for x in np.hstack([k, np.zeros((3, 1))]).reshape(-1)]
    return msg


def arm_joint_names() -> tuple[str, ...]:
    """The six actuated joints, in URDF order."""
    return tuple(load_arm().joint_names)


def to_seconds(t: Time | Duration) -> float:
    return t.sec + t.nanosec * 1e-9


def duration(seconds: float) -> Duration:
    """``seconds`` as a Duration; ValueError unless finite and within its int32 seconds."""
    if not (math.isfinite(seconds) and -(2**31) <= seconds < 2**31 - 1):
        raise ValueError(f"duration {seconds!r} s is not finite or out of range")
    ns = int(round(seconds * 1e9))
    return Duration(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def is_zero(t: Time) -> bool:
    return t.sec == 0 and t.nanosec == 0


class NonFiniteError(ValueError):
    """A message carries NaN or inf where numbers must be finite (a failing sensor, not a
    message meant for another consumer): the safety node holds at once."""


def joint_state_arrays(msg: JointState, names: Sequence[str]) -> tuple[np.ndarray, bool | None]:
    """JointState -> (positions [6] in ``names`` order, suction or None if not reported).

    Raises ValueError naming what is missing or malformed (NonFiniteError for NaN or inf)."""
    if len(msg.position) != len(msg.name):
        raise ValueError(f"{len(msg.name)} names but {len(msg.position)} positions")
    index = {n: i for i, n in enumerate(msg.name)}
    if len(index) != len(msg.name):
        raise ValueError(f"duplicate joint names {_names(msg.name)}")
    missing = [n for n in names if n not in index]
    if missing:
        raise ValueError(
            f"joint state lacks {missing} (it names {list(msg.name)}; if these are the arm's "
            "joints, set the joint_names parameter / launch argument to them, in URDF order)"
        )
    q = np.array([msg.position[index[n]] for n in names], float)  # [6]
    if not np.isfinite(q).all():
        raise NonFiniteError(f"joint positions {q.tolist()} are not finite")  # one line
    suction = None
    if SUCTION_JOINT in index:
        s = msg.position[index[SUCTION_JOINT]]
        if not math.isfinite(s):
            raise NonFiniteError(f"suction position {s} is not finite")
        suction = bool(s > 0.5)
    return q, suction


def _names(names: Sequence[str], limit: int = 12) -> str:
    """A joint-name list for an error message, cut after ``limit`` names."""
    names = list(names)
    more = f" ... ({len(names)} names)" if len(names) > limit else ""
    return f"{[n[:40] for n in names[:limit]]}{more}"


@dataclass(frozen=True)
class Trajectory:
    """A parsed JointTrajectory: times [P] (s from start), positions [P, 6], suction [P]."""

    times: np.ndarray  # [P]
    positions: np.ndarray  # [P, 6]
    suction: np.ndarray | None  # [P] bool, None when the trajectory has no suction joint
    stamp_s: float  # header stamp (0: start on receipt)


def parse_trajectory(msg: JointTrajectory, names: Sequence[str]) -> Trajectory:
    """Check and convert a trajectory; raise ValueError naming the problem."""
    index = {n: i for i, n in enumerate(msg.joint_names)}
    if len(index) != len(msg.joint_names):
        raise ValueError(f"duplicate joint names {_names(msg.joint_names)}")
    unknown = sorted(set(index) - set(names) - {SUCTION_JOINT})
    missing = [n for n in names if n not in index]
    if unknown or missing:
        raise ValueError(f"joint names: unknown {_names(unknown)}, missing {missing}")
    cols = [index[n] for n in names]
    times, qs, suction = [], [], []
    for k, p in enumerate(msg.points):
        if len(p.positions) != len(msg.joint_names):
            raise ValueError(f"point {k} has {len(p.positions)} positions")
        pos = np.asarray(p.positions, float)
        if not np.isfinite(pos).all():
            raise ValueError(f"point {k} is not finite")
        t = to_seconds(p.time_from_start)
        if t < 0:
            raise ValueError(f"point {k}: time_from_start {t:.3f} s is negative")
        if times and t <= times[-1]:
            raise ValueError(f"point {k}: time_from_start {t:.3f} s does not increase")
        times.append(t)
        qs.append(pos[cols])
        if SUCTION_JOINT in index:
            suction.append(bool(pos[index[SUCTION_JOINT]] > 0.5))
    return Trajectory(
        np.array(times, float),
        np.array(qs, float).reshape(-1, len(names)),
        np.array(suction, bool) if SUCTION_JOINT in index else None,
        to_seconds(msg.header.stamp),
    )


def make_trajectory(
    names: Sequence[str],
    positions: np.ndarray,
    times: Sequence[float],
    suction: Sequence[bool] | None,
) -> JointTrajectory:
    """positions [P, 6] at ``times`` [P] (s) -> JointTrajectory (+ the suction pseudo-joint).

    ValueError (nothing is sent) unless the shapes fit and every number is finite: a
    non-finite target would otherwise go out on the wire."""
    q_all = np.asarray(positions, float)  # [P, 6]
    t_all = np.asarray(times, float)  # [P]
    if q_all.size == 0 and t_all.size == 0:  # no points: an empty trajectory (a stop)
        q_all, t_all = q_all.reshape(0, len(names)), t_all.reshape(0)
    if q_all.ndim != 2 or q_all.shape[1] != len(names) or t_all.shape != (len(q_all),):
        raise ValueError(
            f"positions {q_all.shape} and times {t_all.shape} do not fit {len(names)} joints"
        )
    if suction is not None and len(suction) != len(q_all):
        raise ValueError(f"{len(suction)} suction states for {len(q_all)} points")
    if not (np.isfinite(q_all).all() and np.isfinite(t_all).all()):
        raise ValueError("trajectory positions or times are not finite")
    msg = JointTrajectory()
    msg.joint_names = list(names) + ([SUCTION_JOINT] if suction is not None else [])
    for k, (q, t) in enumerate(zip(q_all, t_all, strict=True)):
        pos = [float(x) for x in q]
        if suction is not None:
            pos.append(1.0 if suction[k] else 0.0)
        msg.points.append(JointTrajectoryPoint(positions=pos, time_from_start=duration(t)))
    return msg
