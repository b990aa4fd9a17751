"""The node directory read from the chain: the NodeRegistry's active nodes.

Besides the endpoints a route planner probes, it keeps the full on-chain records, because a
paid job names its hops by *address* and receipts are checked against the *registered*
ed25519 key, neither of which a node's own ``/info`` can be trusted to say.

The registry is open to anyone with a stake, so its strings are peer data: an endpoint that
is not an http(s) URL is left out rather than failing the whole listing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping, Sequence

from sharedllm.chain.connection import Chain
from sharedllm.chain.registry import NodeInfo as RegisteredNode
from sharedllm.client.directory import NodeDirectory
from sharedllm.client.payment import PricedHop
from sharedllm.errors import ProtocolError, RouteError
from sharedllm.protocol.session_msgs import Hop, parse_url
from sharedllm.protocol.types import ModelId, parse_model_id

DEFAULT_TTL_S = 5.0
# The hardware classes whose work a verifier can check today: those with a measured rule
# against a CPU verifier (verifier/hardware_rules.py; a test keeps the two in step). A hop
# of another class would go unjudged, so a paid route uses none: a node claiming a GPU
# class to escape the verifiers earns nothing by it.
CHECKED_CLASSES: frozenset[str] = frozenset({"cpu"})


class RegistryDirectory(NodeDirectory):
    """Active registry nodes (optionally of one model), re-read at most every ``ttl_s``.

    The short cache keeps one planning round (endpoints, then address lookups) on a single
    consistent snapshot without hiding a node that left the registry for long.
    """

    knows_keys = True

    def __init__(
        self,
        chain: Chain,
        model_id: str | None = None,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        hardware: Collection[str] | None = CHECKED_CLASSES,
    ) -> None:
        """``hardware``: the registered hardware classes to list (None: every class, as
        ``sharedllm nodes`` shows them); a paid route keeps to the checked ones."""
        self.chain = chain
        self.hardware = None if hardware is None else frozenset(hardware)
        self.model_id: ModelId | None = (
            parse_model_id(model_id, "model_id") if model_id is not None else None
        )
        self.ttl_s = ttl_s
        self._cached: list[RegisteredNode] | None = None
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    async def records(self, *, refresh: bool = False) -> list[RegisteredNode]:
        """The on-chain records (address, endpoint, pubkey, model id, span, price, stake)."""
        async with self._lock:
            fresh = time.monotonic() - self._read_at < self.ttl_s
            if refresh or self._cached is None or not fresh:
                nodes = await asyncio.to_thread(self.chain.registry.active_nodes)
                self._cached = [n for n in nodes if self._wanted(n)]
                self._read_at = time.monotonic()
            return list(self._cached)

    async def endpoints(self) -> list[str]:
        seen: dict[str, None] = {}
        for node in await self.records():
            url = normalised_endpoint(node.endpoint)
            if url is not None:
                seen.setdefault(url, None)
        return list(seen)

    async def keys(self) -> Mapping[str, frozenset[bytes]]:
        """Each endpoint's registered keys: one, or those of every registration that
        claims it (the link then shows which one answers)."""
        sets: dict[str, set[bytes]] = {}
        for node in await self.records():
            url = normalised_endpoint(node.endpoint)
            if url is not None:
                sets.setdefault(url, set()).add(bytes.fromhex(node.pubkey[2:]))
        return {url: frozenset(ks) for url, ks in sets.items()}

    async def record_for(self, endpoint: str, public_key: str | None = None) -> RegisteredNode:
        """The registered node behind a probed endpoint.

        Anyone may register any endpoint, so when two records claim the same URL the
        ``public_key`` the node showed in ``/info`` decides; without it the claim is ambiguous
        and refused rather than guessed.
        """
        url = normalised_endpoint(endpoint)
        matches = [n for n in await self.records() if normalised_endpoint(n.endpoint) == url]
        if public_key is not None:
            matches = [n for n in matches if n.pubkey == public_key.lower()]
        if len(matches) == 1:
            return matches[0]
        what = "no active registry node" if not matches else "several registry nodes"
        raise RouteError(
            f"{what} at endpoint {endpoint}"
            + (f" with public key {public_key}" if public_key else ""),
            code="UNKNOWN_NODE",
            field="endpoint",
            endpoint=endpoint,
        )

    async def priced_route(
        self, route: Sequence[Hop], public_keys: Mapping[str, str | None] | None = None
    ) -> list[PricedHop]:
        """A planned route (URLs and spans) as a paid job's hops: addresses, prices, keys.

        ``public_keys`` (URL -> the key its ``/info`` showed) settles endpoints that several
        registrations claim. A hop may run any part of its registered span; one whose layers
        reach outside it is refused here, because the market would refuse the job with
        ``SpanMismatch`` after it was served.
        """
        keys = public_keys or {}
        hops = []
        for hop in route:
            node = await self.record_for(hop.url, hop.key or keys.get(hop.url))
            if not node.start <= hop.start < hop.end <= node.end:
                raise RouteError(
                    f"{hop.url} is registered for layers {node.start}:{node.end}, "
                    f"the route uses it for {hop.start}:{hop.end}",
                    code="SpanMismatch",
                    node=node.address,
                    start=hop.start,
                    end=hop.end,
                )
            hops.append(
                PricedHop(
                    url=hop.url,
                    address=node.address,
                    start=hop.start,
                    end=hop.end,
                    price_per_token=node.price_per_token,
                    pubkey=node.pubkey,
                )
            )
        return hops

    def _wanted(self, node: RegisteredNode) -> bool:
        return (
            node.active
            and (self.model_id is None or node.model_id == self.model_id)
            and (self.hardware is None or node.hardware in self.hardware)
        )


def normalised_endpoint(endpoint: str) -> str | None:
    """The endpoint as the planner and ``StaticDirectory`` spell it, or None if unusable."""
    try:
        return parse_url(endpoint.strip(), "endpoint")
    except ProtocolError:
        return None
