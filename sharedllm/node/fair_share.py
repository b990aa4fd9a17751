"""Who gives way when a free node is full.

A free session costs its holder nothing, and a session reserves its whole ``max_length`` of
cache when it opens, so one client asking for a long session could hold most of a node for
as long as it kept the session open. Refusing every session above a fixed share would turn
away an honest lone user's long prompt on an idle node. The rule here applies only under
contention: each client address present (the newcomer included) is owed an equal share of the
node's cache and of its session slots. When a newcomer within its share does not fit, the
node reclaims sessions of clients above their share, most over first, but only sessions that
have not stepped for a while: a session in the middle of an answer is never taken. The
client of a reclaimed session learns it (``SESSION_RECLAIMED``) and opens again, with the
share it is owed now.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Holding:
    """One open free session, as the rule sees it."""

    session_id: str
    client: str
    reserved: int  # bytes of cache it reserved
    idle_s: float  # since its last step (or its opening)


@dataclass(frozen=True)
class Capacity:
    cache_bytes: int
    sessions: int


def to_reclaim(
    holdings: Iterable[Holding],
    client: str,
    need: int,
    capacity: Capacity,
    idle_s: float,
) -> list[str]:
    """Session ids to close so that ``client`` can open a session reserving ``need`` bytes,
    or ``[]`` when it fits already, when it would take more than its share, or when closing
    every eligible session would still not make room (nothing is closed in vain)."""
    held = list(holdings)
    free_bytes = capacity.cache_bytes - sum(h.reserved for h in held)
    free_slots = capacity.sessions - len(held)
    if need <= free_bytes and free_slots >= 1:
        return []
    by_client: dict[str, list[Holding]] = defaultdict(list)
    for h in held:
        by_client[h.client].append(h)
    clients = len(set(by_client) | {client})
    share_bytes = capacity.cache_bytes / clients
    share_slots = capacity.sessions / clients
    own = by_client.get(client, [])
    if sum(h.reserved for h in own) + need > share_bytes or len(own) + 1 > share_slots:
        return []

    def excess(sessions: list[Holding]) -> float:
        """How far over its share a client is (above 1: over)."""
        return max(sum(h.reserved for h in sessions) / share_bytes, len(sessions) / share_slots)

    chosen: list[str] = []
    others = {c: sorted(s, key=lambda h: -h.idle_s) for c, s in by_client.items() if c != client}
    while need > free_bytes or free_slots < 1:
        over = [c for c, s in others.items() if excess(s) > 1.0 and s[0].idle_s >= idle_s]
        if not over:
            return []
        # The most over its share; between equals, the one idle longest.
        worst = max(over, key=lambda c: (excess(others[c]), others[c][0].idle_s))
        taken = others[worst].pop(0)  # its longest idle session
        if not others[worst]:
            del others[worst]
        chosen.append(taken.session_id)
        free_bytes += taken.reserved
        free_slots += 1
    return chosen
