"""Fetch the span's missing layer shards from peers before loading them.

A peer is not trusted: its bytes are stored only if they hash to the name the manifest
asked for (``ModelStore.add_shard_bytes`` checks), so a bad peer costs a retry, not a bad
model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sharedllm.errors import ModelError, SharedLLMError
from sharedllm.model.span import SpanRunner
from sharedllm.model.store import Manifest, ModelStore
from sharedllm.peers.http import PeerClient

log = logging.getLogger("sharedllm.node")
SHARD_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Fetched:
    """One shard stored: the ``done``-th of ``total``, and the bytes fetched so far."""

    layer: int
    peer: str
    size: int
    done: int
    total: int
    bytes_so_far: int


async def fetch_missing_shards(
    peers: PeerClient,
    store: ModelStore,
    manifest: Manifest,
    start: int,
    end: int,
    peer_urls: Sequence[str],
    progress: Callable[[Fetched], None] = lambda _step: None,
) -> list[str]:
    """Fetch every shard of layers ``[start, end)`` not in the store; returns their hashes.
    ``progress`` hears of each shard once it is stored."""
    missing = SpanRunner.missing_shards(store, manifest, start, end)
    fetched = 0
    for done, digest in enumerate(missing, 1):
        layer = manifest.layer_shards.index(digest)
        problems: list[str] = []
        for peer in peer_urls:
            try:
                data = await peers.get_bytes(f"{peer}/shards/{digest}", SHARD_TIMEOUT_S)
                store.add_shard_bytes(digest, data)
                log.info("fetched layer %d shard %s from %s", layer, digest[:12], peer)
                fetched += len(data)
                progress(Fetched(layer, peer, len(data), done, len(missing), fetched))
                break
            except SharedLLMError as exc:
                problems.append(f"{peer}: {exc}")
        else:
            raise ModelError(
                f"layer {layer} shard {digest} is missing and no peer supplied it"
                + (f" ({'; '.join(problems)})" if problems else " (no --peer given)"),
                code="SHARD_MISSING",
                shard=digest,
                layer=layer,
            )
    return missing
