"""Who else publishes on the arm's command topic (the safety node's check without SROS2).

Without DDS security (SROS2 enclaves, README "DDS security") any participant in the domain may
publish on the arm's topic, and the arm would obey it. Where enclaves are not available, the
safety node at least watches (:class:`ArmTopicWatch`): every ``publisher_check_period_s`` it
lists the publishers on its arm topic (``get_publishers_info_by_topic``) and reports any that
is not itself as a diagnostic ERROR (``foreign_arm_publishers``), logged once per change.
DDS cannot tell two nodes of the same name apart without security, so a second endpoint under
the safety node's own name is reported too (a node impersonating it, or a killed safety
process whose endpoints DDS has not yet forgotten). Shadow mode skips the check: the arm topic
is not its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)


def qualified(name: str, namespace: str) -> str:
    """``/ns/name`` (``/name`` in the root namespace)."""
    return f"{namespace.rstrip('/')}/{name}"


def foreign_publishers(
    endpoints: Iterable[tuple[str, str]], own: tuple[str, str], own_publishers: int = 1
) -> list[str]:
    """The publishers in ``endpoints`` ((node name, namespace) each) that are not this node's
    own ``own_publishers`` endpoint(s), as sorted fully qualified node names. Surplus
    endpoints under ``own``'s name count as foreign (named ``<name> (duplicate)``)."""
    me = qualified(*own)
    out, mine = [], 0
    for name, namespace in endpoints:
        q = qualified(name, namespace)
        if q == me and mine < own_publishers:
            mine += 1
        elif q == me:
            out.append(f"{q} (duplicate)")
        else:
            out.append(q or "(unnamed)")
    return sorted(out)


class ArmTopicWatch:
    """The publishers on the arm topic other than this node, as last seen (:attr:`foreign`);
    :meth:`check` (the node's timer) looks again and logs each change once.

    ``topic``: the arm topic as remapped (named in the log). ``own``: this node's (name,
    namespace). ``endpoints()``: the (node name, namespace) of each publisher on ``topic`` now.
    ``logger``: anything with ``error`` and ``info`` (an rclpy logger or a ``logging`` one).
    """

    def __init__(
        self,
        topic: str,
        own: tuple[str, str],
        endpoints: Callable[[], Iterable[tuple[str, str]]],
        logger: Any = log,
    ) -> None:
        self.topic, self.own, self.endpoints, self.log = topic, own, endpoints, logger
        self.foreign: list[str] = []  # other publishers on the arm topic, as last seen

    def check(self) -> None:
        """Report publishers on the arm topic other than this node (once per change)."""
        foreign = foreign_publishers(self.endpoints(), self.own)
        if foreign != self.foreign:
            if foreign:
                self.log.error(
                    f"other publisher(s) on the arm topic {self.topic}: {', '.join(foreign)}; "
                    "only this node may command the arm (run with SROS2 enclaves to enforce it)"
                )
            else:
                self.log.info(f"no other publisher on the arm topic {self.topic} any more")
        self.foreign = foreign
