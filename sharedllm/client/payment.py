"""Turning a planned route into a signed, prepaid job.

The job names the route's node addresses and spans, caps the per-layer price at the highest
price on the route (so a node raising its price mid-job cannot charge more), and bounds the
tokens the session may hold. Its deadline leaves room for the last hop to submit the result
but stays within the market's ``maxJobTtl``, which nodes enforce.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sharedllm.errors import RouteError
from sharedllm.protocol.job import Job, job_id, sign_job
from sharedllm.protocol.types import JobId


@dataclass(frozen=True)
class PricedHop:
    """One hop of a route as the registry knows it."""

    url: str
    address: str
    start: int
    end: int
    price_per_token: int  # SHARE wei per position per layer (prompt and answer tokens alike)
    pubkey: str  # 0x + 32-byte ed25519 key, checks the hop's receipts

    @property
    def layers(self) -> int:
        return self.end - self.start


def route_price(hops: Sequence[PricedHop]) -> int:
    """SHARE wei one token costs over the whole route."""
    return sum(h.layers * h.price_per_token for h in hops)


def make_job(
    model_id: str,
    hops: Sequence[PricedHop],
    client: str,
    max_tokens: int,
    ttl: int,
    now: int | None = None,
) -> Job:
    if not hops:
        raise RouteError("a job needs at least one hop")
    now = int(time.time()) if now is None else now
    return Job.from_json(
        {
            "modelId": model_id,
            "route": [h.address for h in hops],
            "spanStarts": [h.start for h in hops],
            "spanEnds": [h.end for h in hops],
            "maxTokens": max_tokens,
            "maxPricePerToken": max(h.price_per_token for h in hops),
            "nonce": secrets.randbits(128),
            "deadline": now + ttl,
            "client": client,
        }
    )


@dataclass(frozen=True)
class SignedJob:
    job: Job
    signature: bytes
    job_id: JobId

    def wire(self) -> tuple[dict, str]:
        """The (job, signature) pair a session's open request carries."""
        return self.job.to_json(), "0x" + self.signature.hex()


def sign(job: Job, account: object, chain_id: int, market: str) -> SignedJob:
    signature = sign_job(job, account, chain_id, market)
    return SignedJob(job, signature, job_id(job, chain_id, market))
