"""wm_safety.joint_sources without DDS: a restarted /joint_states publisher told from a second
live one, by the message's gid and, where rclpy gives none, from the ROS graph. The safety
node's use of it over DDS is in test_safety_node.py (the ``gid_source`` cases)."""

from __future__ import annotations

import logging

import pytest

pytest.importorskip("rclpy")  # the ROS workspace's packages are on the path with it

from wm_safety.joint_sources import JointStateSources  # noqa: E402

STALE = 0.5
A, B, C = b"a" * 16, b"b" * 16, b"c" * 16


def sources(graph: set[bytes] | None = None) -> JointStateSources:
    g = set() if graph is None else graph
    return JointStateSources(STALE, lambda: set(g), logging.getLogger("test"))


def feed(s: JointStateSources, gid: bytes | None, t0: float, t1: float, dt: float = 0.02):
    """Messages from ``gid`` every ``dt`` in [t0, t1): the restarts they were read as."""
    out, t = [], t0
    while t < t1:
        out.append(s.restarted(gid, t))
        t += dt
    return out


def test_by_gid_a_new_publisher_after_silence_is_a_restart_once():
    s = sources()
    assert not any(feed(s, A, 0.0, 1.0))
    got = feed(s, B, 1.0 + STALE + 0.1, 2.5)  # A silent longer than stale_after_s
    assert got[0] and not any(got[1:])
    assert s.clashes == 0


def test_by_gid_a_short_gap_is_not_a_restart_and_two_live_publishers_clash(caplog):
    s = sources()
    feed(s, A, 0.0, 1.0)
    assert not s.restarted(A, 1.0 + STALE - 0.1)  # same publisher after a gap: no restart
    # B and A alternate, both alive: a misconfiguration, never a restart
    t, got = 1.5, []
    for _ in range(40):
        got += [s.restarted(B, t), s.restarted(A, t + 0.01)]
        t += 0.05
    assert not any(got)
    assert s.clashes == 80
    errors = [r for r in caplog.records if "more than one publisher" in r.getMessage()]
    assert 1 <= len(errors) <= 2  # throttled: 2 s of clashes, one error per 2 s


def test_by_gid_a_publisher_back_after_another_is_a_clash_while_the_other_lives():
    """A, then B (a restart), then A again while B is alive: a clash, however long A was
    silent; once the last publisher has been silent for stale_after_s, a new one is a
    restart again."""
    s = sources()
    feed(s, A, 0.0, 1.0)
    assert s.restarted(B, 2.0)
    feed(s, B, 2.02, 3.0)
    assert not s.restarted(A, 3.0) and s.clashes == 1
    assert not s.restarted(A, 3.1)  # the same publisher again
    assert s.restarted(C, 3.1 + STALE + 0.1)  # A (the latest) silent long enough


def test_by_gid_remembers_a_bounded_number_of_publishers():
    s = sources()
    for k in range(50):
        s.restarted(bytes([k]) * 16, float(k))
    assert len(s.heard) <= JointStateSources.MAX_TRACKED


def test_by_graph_a_publisher_new_after_a_gap_is_a_restart():
    graph = {A}
    s = sources(graph)
    assert not any(feed(s, None, 0.0, 1.0))
    graph.add(B)  # the respawn; A (SIGKILLed) stays in the graph until its lease ends
    got = feed(s, None, 1.0 + STALE + 0.1, 2.5)
    assert got[0] and not any(got[1:])


def test_by_graph_discovery_late_within_the_window_still_counts():
    graph = {A}
    s = sources(graph)
    feed(s, None, 0.0, 1.0)
    t = 1.0 + STALE + 0.1
    assert not s.restarted(None, t)  # the new publisher not listed yet
    graph.add(B)
    assert s.restarted(None, t + STALE / 2)  # listed within stale_after_s of the gap


def test_by_graph_no_new_publisher_is_the_same_driver_and_the_window_closes():
    graph = {A}
    s = sources(graph)
    feed(s, None, 0.0, 1.0)
    assert not any(feed(s, None, 1.0 + STALE + 0.1, 2.5))  # a stall, the same publisher
    graph.add(B)  # a second publisher long after the gap: not a restart by this path
    assert not any(feed(s, None, 2.5, 3.0))


def test_refuses_a_bad_stale_time():
    with pytest.raises(ValueError, match="stale_after_s"):
        JointStateSources(0.0, set)
