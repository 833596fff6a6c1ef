"""Fuzz the message converters with hostile messages (pure message construction and
conversion: no rclpy context, no node).

Targets: ``wm_bringup.msgs`` (joint_state_arrays, parse_trajectory, make_trajectory),
``wm_planner.planner_node.decode_latent`` and ``wm_perception.perception_node.image_to_rgb``.
Clean error: ``ValueError`` with a one-line message (what each converter documents). A valid
result must be well-formed: the right shapes and dtypes, finite numbers, increasing times."""

from __future__ import annotations

import math

import numpy as np
import pytest
import ros_harness  # noqa: F401  (the worktree's ros_ws packages first on sys.path)
from builtin_interfaces.msg import Duration, Time
from fuzzlib import Target, fuzz_tests
from hypothesis import strategies as st
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from wm_bringup.msgs import (
    SUCTION_JOINT,
    arm_joint_names,
    joint_state_arrays,
    make_trajectory,
    parse_trajectory,
)
from wm_perception.perception_node import image_to_rgb
from wm_planner.commands import decode_latent

NAMES = arm_joint_names()
floats = st.one_of(
    st.floats(-4.0, 4.0),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.5, 0.50000001, 1e308, -0.0]),
)
joint_names = st.one_of(st.sampled_from([*NAMES, SUCTION_JOINT]), st.text(max_size=12), st.just(""))


@st.composite
def name_lists(draw) -> list[str]:
    """Mostly the arm's names (shuffled, with duplicates, missing or extra names)."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.lists(joint_names, max_size=10))
    names = list(draw(st.permutations(NAMES)))
    if kind >= 2 and draw(st.booleans()):
        names.append(SUCTION_JOINT)
    for _ in range(draw(st.integers(0, 2)) if kind == 3 else 0):
        op = draw(st.integers(0, 2))
        if op == 0 and names:
            names.pop(draw(st.integers(0, len(names) - 1)))
        elif op == 1 and names:
            names.append(draw(st.sampled_from(names)))  # duplicate
        else:
            names.insert(draw(st.integers(0, len(names))), draw(joint_names))
    return names


def float_lists(n: int) -> st.SearchStrategy:
    """``n`` floats, sometimes one more or less."""
    return st.integers(max(0, n - 1), n + 1).flatmap(
        lambda k: st.lists(floats, min_size=k if k != n + 1 else n, max_size=k)
    ) | st.lists(floats, min_size=n, max_size=n)


# ---------------------------------------------------------------- JointState
joint_states = name_lists().flatmap(
    lambda names: st.builds(
        lambda pos, vel: JointState(name=names, position=pos, velocity=vel),
        float_lists(len(names)),
        st.lists(floats, max_size=len(names) + 1),
    )
)


def check_joint_state(msg: JointState) -> None:
    q, suction = joint_state_arrays(msg, NAMES)
    assert q.shape == (6,) and q.dtype == np.float64 and np.isfinite(q).all()
    assert suction is None or isinstance(suction, bool)
    assert len(set(msg.name)) == len(msg.name), "duplicate names accepted"


# ---------------------------------------------------------------- JointTrajectory
durations = st.one_of(
    st.builds(Duration, sec=st.integers(-5, 10), nanosec=st.integers(0, 999_999_999)),
    st.builds(Duration, sec=st.integers(-(2**31), 2**31 - 1), nanosec=st.integers(0, 2**32 - 1)),
)


@st.composite
def trajectories(draw) -> JointTrajectory:
    names = draw(name_lists())
    points = []
    t = 0
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.booleans()):
            t += draw(st.integers(1, 500_000_000))
            d = Duration(sec=t // 1_000_000_000, nanosec=t % 1_000_000_000)
        else:
            d = draw(durations)
        points.append(
            JointTrajectoryPoint(positions=draw(float_lists(len(names))), time_from_start=d)
        )
    msg = JointTrajectory(joint_names=names, points=points)
    msg.header.stamp = Time(
        sec=draw(st.integers(-(2**31), 2**31 - 1)), nanosec=draw(st.integers(0, 2**32 - 1))
    )
    return msg


def check_trajectory(msg: JointTrajectory) -> None:
    tr = parse_trajectory(msg, NAMES)
    p = len(msg.points)
    assert tr.times.shape == (p,) and tr.positions.shape == (p, 6)
    assert np.isfinite(tr.positions).all() and np.isfinite(tr.times).all()
    assert (tr.times >= 0).all() and (np.diff(tr.times) > 0).all()
    assert tr.suction is None or tr.suction.shape == (p,)
    assert math.isfinite(tr.stamp_s)


# ---------------------------------------------------------------- make_trajectory
@st.composite
def planned(draw):
    p = draw(st.integers(0, 5))
    shape = draw(st.sampled_from([(p, 6), (p, 6), (p,), (p, 5), (p, 7), (), (p, 6, 1)]))
    positions = np.array(
        draw(st.lists(floats, min_size=math.prod(shape), max_size=math.prod(shape))), float
    ).reshape(shape)
    times = draw(
        st.lists(st.one_of(floats, st.floats(-1e12, 1e12)), min_size=max(0, p - 1), max_size=p + 1)
    )
    suction = draw(
        st.one_of(st.none(), st.lists(st.booleans(), min_size=max(0, p - 1), max_size=p + 1))
    )
    return positions, times, suction


def check_make_trajectory(case) -> None:
    positions, times, suction = case
    msg = make_trajectory(NAMES, positions, times, suction)
    assert len(msg.points) == len(times)
    back = (
        parse_trajectory(msg, NAMES) if all(t > 0 for t in times) and _increasing(times) else None
    )
    if back is not None:
        assert np.allclose(back.positions, np.asarray(positions, float).reshape(-1, 6))


def _increasing(times) -> bool:
    ns = [round(t * 1e9) for t in times]
    return all(b > a for a, b in zip(ns, ns[1:], strict=False))


# ---------------------------------------------------------------- Images
ENCODINGS = ["32FC1", "rgb8", "bgr8", "RGB8", "mono8", "rgba8", "16UC1", "", "32fc1", "bgr8\0"]


@st.composite
def images(draw) -> Image:
    enc = draw(st.one_of(st.sampled_from(ENCODINGS), st.text(max_size=8)))
    h, w = draw(st.integers(0, 12)), draw(st.integers(0, 12))
    bpp = {"32FC1": 4, "32fc1": 4}.get(enc, 3)
    kind = draw(st.integers(0, 4))
    if kind == 0:  # consistent geometry, maybe padded rows
        step = w * bpp + draw(st.integers(0, 3))
        n = h * step
    elif kind == 1:  # consistent with a wrong step
        step = draw(st.integers(0, 64))
        n = h * step
    elif kind == 2:  # truncated / extra data
        step = w * bpp
        n = max(0, h * step + draw(st.integers(-8, 8)))
    elif kind == 3:  # huge claimed geometry, little data
        h, w = draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**32 - 1))
        step = draw(st.integers(0, 2**32 - 1))
        n = draw(st.integers(0, 64))
    else:  # big but consistent: 1 x (2^16) pixels
        h, w, step = 1, 1 << 16, (1 << 16) * bpp
        n = step
    if kind != 3 and n > 1 << 20:
        n = 0
    fill = draw(st.sampled_from(["random", "nan", "inf", "zero"]))
    if fill == "random":
        data = draw(st.binary(min_size=min(n, 64), max_size=min(n, 64)))
        data = (data * (n // max(len(data), 1) + 1))[:n] if data else bytes(n)
    elif fill in ("nan", "inf"):
        word = np.array([np.nan if fill == "nan" else np.inf], "<f4").tobytes()
        data = (word * (n // 4 + 1))[:n]
    else:
        data = bytes(n)
    return Image(
        height=h, width=w, step=step, encoding=enc, is_bigendian=draw(st.integers(0, 255)),
        data=data,
    )  # fmt: skip


def check_latent(msg: Image) -> None:
    z = decode_latent(msg)
    assert z.dtype == np.float32 and z.shape == (msg.height, msg.width)
    assert np.isfinite(z).all()


def check_image(msg: Image) -> None:
    img = image_to_rgb(msg)
    assert img.dtype == np.uint8 and img.shape == (msg.height, msg.width, 3)


TARGETS = [
    Target("msgs.joint_state_arrays", joint_states, check_joint_state, (ValueError,), quick=200),
    Target("msgs.parse_trajectory", trajectories(), check_trajectory, (ValueError,), quick=200),
    Target("msgs.make_trajectory", planned(), check_make_trajectory, (ValueError,), quick=200),
    Target("planner.decode_latent", images(), check_latent, (ValueError,), quick=200),
    Target("perception.image_to_rgb", images(), check_image, (ValueError,), quick=200),
]


test_fuzz, test_fuzz_10k = fuzz_tests(TARGETS)


def test_specific_hostile_messages():
    dup = JointState(name=[*NAMES, NAMES[0]], position=[0.0] * 7)
    with pytest.raises(ValueError, match="duplicate joint names"):
        joint_state_arrays(dup, NAMES)
    nan_suction = JointState(name=[*NAMES, SUCTION_JOINT], position=[0.0] * 6 + [math.nan])
    with pytest.raises(ValueError, match="suction position nan is not finite"):
        joint_state_arrays(nan_suction, NAMES)
    back = JointTrajectory(
        joint_names=list(NAMES),
        points=[JointTrajectoryPoint(positions=[0.0] * 6, time_from_start=Duration(sec=-1))],
    )
    with pytest.raises(ValueError, match="negative"):
        parse_trajectory(back, NAMES)
    with pytest.raises(ValueError, match="not finite"):
        make_trajectory(NAMES, np.full((1, 6), np.nan), [0.1], None)
    with pytest.raises(ValueError, match="not finite"):
        make_trajectory(NAMES, np.zeros((1, 6)), [math.inf], None)
    with pytest.raises(ValueError, match="out of range"):
        make_trajectory(NAMES, np.zeros((1, 6)), [1e12], None)
    with pytest.raises(ValueError, match="2 suction states for 1 points"):
        make_trajectory(NAMES, np.zeros((1, 6)), [0.1], [True, False])
    assert len(make_trajectory(NAMES, np.zeros((0, 6)), [], []).points) == 0
    z = np.array([[1.0, np.nan]], "<f4")
    latent = Image(height=1, width=2, step=8, encoding="32FC1", data=z.tobytes())
    with pytest.raises(ValueError, match="NaN or inf"):
        decode_latent(latent)
