"""Who else publishes on the arm's command topic (the safety node's check without SROS2).

Without DDS security any participant in the domain may publish on the arm's topic, and the arm
would obey it. Where enclaves are not available (README, "DDS security"), the safety node at
least watches: every ``publisher_check_period_s`` it lists the publishers on its arm topic
(``get_publishers_info_by_topic``) and reports any that is not itself as a diagnostic ERROR.
DDS cannot tell two nodes of the same name apart without security, so a second endpoint under
the safety node's own name is reported too (a node impersonating it, or a killed safety
process whose endpoints DDS has not yet forgotten).
"""

from __future__ import annotations

from collections.abc import Iterable


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
