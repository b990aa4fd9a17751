"""What a move changes beyond the node itself: where its peers are listed, and, for a staked
node, its registry entry.

A free node learns of its peers from ``--peer`` and tells nobody it moved: its ``/info``
says so. A staked node's peers are the registry's active nodes on its model, pinned to their
registered keys; before it changes its registered span it waits until every job it served
has reached the chain (the JobMarket checks each hop's layers against its registration when
a job is submitted, so a job still to be submitted would be refused after the change), and
then it sends ``updateConfig`` with the new span, everything else unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Protocol

from eth_account.signers.local import LocalAccount

from sharedllm.chain.connection import Chain
from sharedllm.chain.registry import NodeConfig
from sharedllm.errors import ProtocolError, SharedLLMError
from sharedllm.node.ledger import SERVED, Ledger
from sharedllm.peers.link_tls import LinkTrust
from sharedllm.protocol.session_msgs import parse_url

log = logging.getLogger("sharedllm.node")


class MoveRegistration(Protocol):
    async def peer_urls(self, trust: LinkTrust) -> list[str]:
        """The nodes whose spans the decision weighs (their links pinned in ``trust``)."""
        ...

    def jobs_on_chain(self) -> bool:
        """Whether nothing this node served still has to reach the chain."""
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

    def jobs_on_chain(self) -> bool:
        return True

    async def moved(self, start: int, end: int) -> None:
        return None


class StakedRegistration:
    """A staked node: the registry's nodes, and its own registry entry."""

    def __init__(self, chain: Chain, account: LocalAccount, ledger: Ledger) -> None:
        self.chain, self.account, self.ledger = chain, account, ledger

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

    def jobs_on_chain(self) -> bool:
        now = time.time()
        waiting = [
            j.job_id for j in self.ledger.with_status(SERVED) if int(j.job["deadline"]) > now
        ]  # a job past its deadline can no longer be submitted, so no change can break it
        if waiting:
            log.info("move: %d served jobs are not on-chain yet", len(waiting))
        return not waiting

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
