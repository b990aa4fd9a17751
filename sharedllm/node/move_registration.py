"""What a move changes beyond the node itself: where its peers are listed, and, for a staked
node, its registry entry.

A free node learns of its peers from ``--peer`` and tells nobody it moved: its ``/info``
says so. A staked node's peers are the registry's active nodes on its model, pinned to their
registered keys; it sends ``updateConfig`` with the new span, everything else unchanged.
The jobs it served on the old span stay payable: the market checks a job that may have been
sent before a change of span against the span the node had then (``chain/terms_lock.py``).
That is why a node may change its span only once per the registry's terms lock, and why a
staked node does not plan a move until the lock since its last change is over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from eth_account.signers.local import LocalAccount

from sharedllm.chain.connection import Chain
from sharedllm.chain.registry import NodeConfig
from sharedllm.chain.times import format_duration
from sharedllm.errors import ProtocolError, SharedLLMError
from sharedllm.peers.link_tls import LinkTrust
from sharedllm.protocol.session_msgs import parse_url

log = logging.getLogger("sharedllm.node")


class MoveRegistration(Protocol):
    async def peer_urls(self, trust: LinkTrust) -> list[str]:
        """The nodes whose spans the decision weighs (their links pinned in ``trust``)."""
        ...

    async def move_refusal(self) -> str | None:
        """Why the registration cannot change now (and no move is planned), or None."""
        ...

    async def moved(self, start: int, end: int) -> None:
        """Record the new span where others look it up (before the node serves it)."""
        ...


class FreePeers:
    """A free node: the ``--peer`` list, and nothing on-chain."""

    def __init__(self, peers: Sequence[str]) -> None:
        self.peers = list(peers)

    async def peer_urls(self, trust: LinkTrust) -> list[str]:
        return self.peers

    async def move_refusal(self) -> str | None:
        return None

    async def moved(self, start: int, end: int) -> None:
        return None


class StakedRegistration:
    """A staked node: the registry's nodes, and its own registry entry."""

    def __init__(self, chain: Chain, account: LocalAccount) -> None:
        self.chain, self.account = chain, account

    async def peer_urls(self, trust: LinkTrust) -> list[str]:
        me = await asyncio.to_thread(self.chain.registry.get_node, self.account.address)
        nodes = await asyncio.to_thread(self.chain.registry.active_nodes)
        urls = []
        for node in nodes:
            if node.address == me.address or node.model_id != me.model_id:
                continue
            try:
                url = parse_url(node.endpoint.strip(), "endpoint")
            except ProtocolError:  # an unusable endpoint: no client reaches it either
                continue
            trust.expect(url, bytes.fromhex(node.pubkey[2:]))
            urls.append(url)
        return urls

    async def move_refusal(self) -> str | None:
        registry = self.chain.registry
        changed_at = await asyncio.to_thread(registry.terms_changed_at, self.account.address)
        if not changed_at:
            return None
        lock = await asyncio.to_thread(registry.terms_lock)
        now = await asyncio.to_thread(self.chain.now)
        if now >= changed_at + lock:
            return None
        wait, per = format_duration(changed_at + lock - now), format_duration(lock)
        return f"the registry takes the next change of span in {wait} (one per {per})"

    async def moved(self, start: int, end: int) -> None:
        """Send ``updateConfig`` with the new span; if the chain's answer is lost, the entry
        is read back, and only an entry still naming the old span is a failure (the node
        then stays where the registry says it is)."""
        me = await asyncio.to_thread(self.chain.registry.get_node, self.account.address)
        cfg = NodeConfig(
            me.endpoint, me.pubkey, me.model_id, start, end, me.price_per_token,
            me.hardware or "cpu",
        )  # fmt: skip
        try:
            tx = await asyncio.to_thread(self.chain.registry.update_config, self.account, cfg)
        except SharedLLMError:
            now = await asyncio.to_thread(self.chain.registry.get_node, self.account.address)
            if (now.start, now.end) != (start, end):
                raise
            log.info("registry entry names layers %d:%d (its receipt was lost)", start, end)
            return
        log.info("registry entry now names layers %d:%d (tx %s)", start, end, tx.tx_hash)
