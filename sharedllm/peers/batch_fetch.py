"""Reading a posted batch's jobs from its poster, checked against the chain.

The chain holds only a batch's hashes; its poster serves the jobs at ``GET /batches/{id}``.
What it serves is rebuilt here (credits and roots recomputed from the jobs) and must hash to
the ``entriesHash`` the batch was posted with, so a poster can withhold its jobs but never
pass off others.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sharedllm.chain.batch_tree import Entry, batch_from_json, entries_hash
from sharedllm.chain.connection import Chain
from sharedllm.errors import PeerError
from sharedllm.peers.http import PeerClient

MAX_BATCH_BODY = 32 << 20  # 256 entries of 64 jobs at ~1.5 KB each, with room
FETCH_TIMEOUT_S = 10.0


async def fetch_batch_body(
    endpoint: str, batch_id: int, key: bytes | None = None
) -> dict[str, Any]:
    """``key``: the poster's registered ed25519 key, which an https endpoint must hold."""
    base = endpoint.rstrip("/")
    async with PeerClient() as peers:
        if key is not None:
            peers.trust.expect(base, key)
        return await peers.get_json(f"{base}/batches/{batch_id}", FETCH_TIMEOUT_S, MAX_BATCH_BODY)


async def read_batch(chain: Chain, batch_id: int) -> tuple[list[Entry], dict[str, Any]]:
    """The batch's entries and the body they came from; a ``SharedLLMError`` if its poster
    does not answer, or answers with other entries than it posted."""
    record = await asyncio.to_thread(chain.batches.get_batch, batch_id)
    node = await asyncio.to_thread(chain.registry.get_node, record.poster)
    body = await fetch_batch_body(node.endpoint, batch_id, bytes.fromhex(node.pubkey[2:]))
    reward = int((await asyncio.to_thread(chain.market.params))["rewardPerToken"])
    entries = batch_from_json(body, chain.chain_id, chain.market.address, reward)
    if entries_hash(entries) != record.entries_hash:
        raise PeerError(
            f"batch {batch_id}: its poster serves entries that are not the ones it posted",
            failed_url=node.endpoint,
        )
    return entries, body


def read_batch_now(chain: Chain, batch_id: int) -> list[Entry]:
    """``read_batch`` from synchronous code (a worker thread, a command)."""
    return asyncio.run(read_batch(chain, batch_id))[0]
