"""Ask nodes for their ``/info`` and time the round trip; unreachable nodes drop out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sharedllm.errors import SharedLLMError
from sharedllm.peers.http import PeerClient
from sharedllm.protocol.node_info import NodeInfo, parse_node_info

PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Candidate:
    url: str
    info: NodeInfo
    rtt_ms: float


async def probe(peers: PeerClient, url: str, timeout: float = PROBE_TIMEOUT_S) -> Candidate:
    began = time.perf_counter()
    body = await peers.get_json(f"{url}/info", timeout)
    rtt_ms = (time.perf_counter() - began) * 1000.0
    return Candidate(url, parse_node_info(body), rtt_ms)


async def probe_all(
    peers: PeerClient, urls: Iterable[str], timeout: float = PROBE_TIMEOUT_S
) -> list[Candidate]:
    """Every node that answered with a well-formed /info, in the order given."""
    found, _ = await probe_report(peers, urls, timeout)
    return found


async def probe_report(
    peers: PeerClient, urls: Iterable[str], timeout: float = PROBE_TIMEOUT_S
) -> tuple[list[Candidate], dict[str, str]]:
    """The nodes that answered, and for each one that did not, why (to name it to a user)."""
    urls = list(urls)
    results = await asyncio.gather(
        *(probe(peers, u, timeout) for u in urls), return_exceptions=True
    )
    found, failed = [], {}
    for url, result in zip(urls, results, strict=True):
        if isinstance(result, Candidate):
            found.append(result)
        elif isinstance(result, SharedLLMError):
            failed[url] = result.message
        else:
            raise result
    return found, failed
