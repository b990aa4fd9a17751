"""Route planning: a chain of nodes that runs layers ``start..end`` in order.

A hop may run any contiguous part of its node's span (nodes on 0:12, 10:20 and 18:30 chain
as 0:12, 12:20, 20:30), so the search is a shortest path over layer boundaries in which a
hop leaves one boundary inside a node's span and reaches another. ``RoutePolicy`` says
which nodes are eligible and what a hop costs; the default minimises estimated latency
(probe round trip plus measured compute for the layers run, stretched by the node's queue)
and then price. A hop's cost is linear in its layers, so the cheapest route cuts only
where some span starts or ends: those are the only boundaries searched.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sharedllm.client.directory import NodeDirectory
from sharedllm.errors import RouteError
from sharedllm.peers.http import PeerClient
from sharedllm.peers.probe import Candidate, probe_report
from sharedllm.protocol.session_msgs import Hop


class RoutePolicy:
    """Eligibility and cost of one hop. Costs are tuples, compared in order, summed per route."""

    def __init__(self, trusted: Collection[str] | None = None, min_free_tokens: int = 1) -> None:
        self.trusted = set(trusted) if trusted is not None else None
        self.min_free_tokens = min_free_tokens

    def allows(self, node: Candidate) -> bool:
        if self.trusted is not None and node.url not in self.trusted:
            return False
        info = node.info
        return (
            info.moving_to is None  # a moving node opens no session until it has moved
            and info.sessions_open < info.sessions_max
            and info.free_cache_tokens >= self.min_free_tokens
        )

    def cost(self, node: Candidate, layers: int) -> tuple[float, int]:
        """(estimated ms per token through ``layers`` of this node's span, price for one
        token over them). The estimate counts the node's load: a busy node's steps wait for
        the batches ahead of them, so a new session goes to the node that will answer
        soonest. Compute is the node's measured time for its span, in proportion. A
        policy's cost must stay affine in ``layers`` (``best_chain`` relies on it)."""
        info = node.info
        compute = info.expected_ms_per_token * layers / info.layers
        return node.rtt_ms + compute, info.price * layers


@dataclass(frozen=True)
class PlannedHop:
    """One hop of a planned chain: a node and the layers ``[start, end)`` it runs."""

    node: Candidate
    start: int
    end: int


Cost = tuple[float, int]


def _plus(a: Cost, b: Cost) -> Cost:
    return a[0] + b[0], a[1] + b[1]


def _times(a: Cost, k: int) -> Cost:
    return a[0] * k, a[1] * k


def best_chain(
    nodes: Sequence[Candidate], start: int, end: int, policy: RoutePolicy
) -> list[PlannedHop]:
    """The cheapest chain (by ``policy.cost``) running ``[start, end)``, or RouteError.

    A hop's cost is affine in the layers it runs (``base + slope * layers``), so the best
    way to reach cut ``s`` through node ``n`` comes from the cut ``b`` inside its span with
    the lowest ``best[b] - slope * b``: kept per node as the cuts go by, that makes one pass
    over the cuts, O(cuts x nodes), whatever the span lengths.
    """
    usable = [n for n in nodes if policy.allows(n)]
    cuts = sorted(
        {start, end} | {b for n in usable for b in (n.info.start, n.info.end) if start < b < end}
    )
    lines = []
    for node in usable:
        base = policy.cost(node, 0)
        one = policy.cost(node, 1)
        lines.append((node, base, (one[0] - base[0], one[1] - base[1])))
    best: dict[int, tuple[Cost, PlannedHop | None]] = {start: ((0.0, 0), None)}
    lowest: dict[int, tuple[Cost, int]] = {}  # per node: min of best[b] - slope * b, and b
    for cut in cuts:
        if cut != start:
            for i, (node, base, slope) in enumerate(lines):
                if i in lowest and node.info.start < cut <= node.info.end:
                    low, b = lowest[i]
                    total = _plus(_plus(low, base), _times(slope, cut))
                    if cut not in best or total < best[cut][0]:
                        best[cut] = (total, PlannedHop(node, b, cut))
        if cut == end or cut not in best:
            continue
        reached = best[cut][0]
        for i, (node, _, slope) in enumerate(lines):
            if node.info.start <= cut < node.info.end:
                value = _plus(reached, _times(slope, -cut))
                if i not in lowest or value < lowest[i][0]:
                    lowest[i] = (value, cut)
    if end not in best:
        spans = sorted({(n.info.start, n.info.end) for n in nodes})
        raise RouteError(
            f"no chain of known nodes covers layers {start}:{end} (spans seen: {spans})",
            start=start,
            end=end,
        )
    chain: list[PlannedHop] = []
    hop = best[end][1]
    while hop is not None:
        chain.append(hop)
        hop = best[hop.start][1]
    return chain[::-1]


PLAIN_HTTP = "plain http, and a paid session travels only over encrypted links"


class RoutePlanner:
    def __init__(
        self,
        directory: NodeDirectory,
        peers: PeerClient,
        policy: RoutePolicy | None = None,
        *,
        encrypted_only: bool = False,
    ) -> None:
        """``encrypted_only`` (paid routes): plain http nodes are left out, since a paid
        session travels only over encrypted links."""
        self.directory = directory
        self.peers = peers
        self.policy = policy or RoutePolicy()
        self.encrypted_only = encrypted_only
        self.unreachable: dict[str, str] = {}  # from the last probe: node URL -> why

    async def candidates(self, model_id: str, exclude: Collection[str] = ()) -> list[Candidate]:
        urls = [u for u in await self.directory.endpoints() if u not in exclude]
        plain = {u: PLAIN_HTTP for u in urls if self.encrypted_only and u.startswith("http:")}
        urls = [u for u in urls if u not in plain]
        for url, keys in (await self.directory.keys()).items():
            self.peers.trust.expect(url, *keys)
        found, unreachable = await probe_report(self.peers, urls)
        others = [c for c in found if c.info.model_id != model_id]
        self.unreachable = (
            plain | unreachable | {c.url: f"serves model {c.info.model_id[:10]}…" for c in others}
        )
        return [c for c in found if c.info.model_id == model_id]

    async def plan(
        self, model_id: str, start: int, end: int, exclude: Collection[str] = ()
    ) -> list[Hop]:
        nodes = await self.candidates(model_id, exclude)
        if not nodes:
            tried = "; ".join(f"{url}: {why}" for url, why in self.unreachable.items())
            raise RouteError(
                f"no reachable node serves model {model_id}"
                + (f" (tried {tried})" if tried else " (no node to try)"),
                model_id=model_id,
            )
        try:
            chain = best_chain(nodes, start, end, self.policy)
        except RouteError as exc:
            if self.unreachable:
                tried = "; ".join(f"{url}: {why}" for url, why in self.unreachable.items())
                exc.message += f" (left out: {tried})"
                exc.args = (exc.message,)
            raise
        return [Hop(h.node.url, h.start, h.end, _link_key(self.peers, h.node.url)) for h in chain]


def _link_key(peers: PeerClient, url: str) -> str | None:
    """The key the link to ``url`` was pinned to when it was probed (None over plain http):
    the hop before it in the route pushes to it pinned to the same key."""
    key = peers.trust.pinned(url)
    return "0x" + key.hex() if key is not None else None
