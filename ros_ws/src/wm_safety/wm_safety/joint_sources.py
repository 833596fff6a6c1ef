"""Who publishes ``/joint_states``: a restarted arm driver told from two live publishers.

When the arm's driver (or a simulator) restarts, it holds its arm where it is, and the safety
filter's last safe command means nothing to it: the safety node must re-sync from the measured
joints, whatever the gap. Two publishers that both stay alive are a misconfiguration instead,
reported and not re-synced (a re-sync per message would stop the arm and re-aim a latched hold).

Silence is measured in wall time (``time.monotonic``, passed in): the node's clock may be a
simulator's, which stops with it, so a restarted simulator's first joint state can arrive
before its clock does, and in sim time the old publisher was silent for 0 s.

The publisher is the message's gid (``MessageInfo``). Where rclpy gives none (Jazzy's rclpy 7.1),
a ``/joint_states`` publisher in the ROS graph that was not there while the states flowed,
seen after a gap, is the restarted driver.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class JointStateSources:
    """Feed it every joint state's publisher gid (or None) and wall time; it says when one
    comes from the arm's driver restarted.

    ``stale_after_s``: silence that makes a publisher gone. ``graph_gids``: the gids of the
    ``/joint_states`` publishers in the ROS graph now (asked only where messages carry no gid).
    ``logger``: anything with ``warning`` and ``error`` (an rclpy logger or a ``logging`` one).
    """

    MAX_TRACKED = 8  # publishers remembered (those that went away are forgotten first)
    THROTTLE_S = 2.0  # the clash error at most this often (wall time)

    def __init__(
        self,
        stale_after_s: float,
        graph_gids: Callable[[], set[bytes]],
        logger=log,
    ) -> None:
        if not stale_after_s > 0.0:
            raise ValueError(f"stale_after_s must be > 0, got {stale_after_s}")
        self.stale = stale_after_s
        self.graph_gids = graph_gids
        self.log = logger
        self.source: bytes | None = None  # the publisher of the last message
        self.wall: float | None = None  # wall time of the last message
        self.heard: dict[bytes, float] = {}  # gid -> wall time of its last message
        self.flowing: set[bytes] = set()  # graph publishers while the states flowed
        self.window: float | None = None  # after a gap: look for a new one until then (wall)
        self.clashes = 0  # messages from a second live publisher
        self.clashed_at: float | None = None  # wall time of the last clash logged
        self.warned_no_gid = False

    def restarted(self, gid: bytes | None, wall: float) -> bool:
        """One message from ``gid`` (None: rclpy gives none) at wall time ``wall``: True when
        its publisher replaced one silent for ``stale_after_s``."""
        was_stale = self.wall is not None and wall - self.wall > self.stale
        self.wall = wall
        if gid is not None:
            return self._by_gid(gid, wall)
        return self._by_graph(was_stale, wall)

    def _by_gid(self, gid: bytes, wall: float) -> bool:
        previous, self.source = self.source, gid
        last_heard = self.heard.pop(previous, None) if previous != gid else None
        self.heard[gid] = wall
        while len(self.heard) > self.MAX_TRACKED:
            self.heard.pop(next(iter(self.heard)))
        if previous is None or previous == gid:
            return False
        if last_heard is None or wall - last_heard > self.stale:
            return True
        self.heard[previous] = last_heard  # still alive: both publish
        self.clashes += 1
        if self.clashed_at is None or wall - self.clashed_at >= self.THROTTLE_S:
            self.clashed_at = wall
            self.log.error(
                "joint states from more than one publisher on /joint_states: run one (the "
                "safety node follows the latest message)"
            )
        return False

    def _by_graph(self, was_stale: bool, wall: float) -> bool:
        """A SIGKILLed publisher stays in the graph until its DDS lease ends, so the new one is
        told by being new, not by being alone; discovery may list it a little after its first
        message, hence a window of ``stale_after_s`` after the gap. Two live publishers are not
        told apart here."""
        if not self.warned_no_gid:
            self.warned_no_gid = True
            self.log.warning(
                "this rclpy reports no publisher gid per message: a restarted arm driver is "
                "told by a new /joint_states publisher in the ROS graph after a gap"
            )
        gids = self.graph_gids()
        if was_stale and self.flowing:
            self.window = wall + self.stale
        if self.window is None:
            self.flowing = gids  # flowing: these are the driver's publishers
            return False
        if gids - self.flowing:
            self.window, self.flowing = None, gids
            return True
        if wall > self.window:
            self.window, self.flowing = None, gids  # no new publisher: the same driver
        return False
