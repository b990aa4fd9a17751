"""``GET /jobs/{job_id}/transcript``: a hop's stored transcript, for staked verifiers and for
the jurors of a dispute on the job (a juror penalised below the minimum stake in another
case still judges this one).

Checks run cheapest first: header syntax, then freshness and the signature (local work),
then the chain's verifier list (an RPC call), and only then whether the job is known here,
so an unauthenticated caller cannot even learn which jobs this node served.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from sharedllm.errors import NotVerifier, ProtocolError, TranscriptMissing
from sharedllm.node.transcripts import TranscriptStore
from sharedllm.protocol import transcript_format
from sharedllm.protocol.transcript_auth import check_request, parse_headers
from sharedllm.protocol.types import parse_job_id


@dataclass(frozen=True)
class TranscriptAccess:
    store: TranscriptStore
    chain_id: int
    market: str
    address: str  # this node's account: requests must be signed for it
    may_read: Callable[[str, str], bool]  # (verifier, job id); blocking chain reads, in a thread


ACCESS = web.AppKey("transcripts", TranscriptAccess)


async def transcript(request: web.Request) -> web.Response:
    access = request.app.get(ACCESS)
    auth = parse_headers(request.headers)
    job_id = parse_job_id(request.match_info["job_id"], "job_id")
    hop = _hop(request.query.get("hop"))
    if access is None:
        raise TranscriptMissing("this node serves free sessions and keeps no transcripts")
    check_request(
        auth,
        chain_id=access.chain_id,
        market=access.market,
        node=access.address,
        job_id=job_id,
        now=time.time(),
    )
    if not await asyncio.to_thread(access.may_read, auth.verifier, job_id):
        raise NotVerifier(f"{auth.verifier} is neither an active verifier nor a juror of {job_id}")
    body = await asyncio.to_thread(access.store.read, job_id)
    if body is None:
        raise TranscriptMissing(f"no transcript of {job_id} here", job_id=job_id)
    # A file that no longer parses is still what this node kept: the verifier judges it.
    stored = transcript_format.peek_hop(body)
    if hop is not None and stored is not None and stored != hop:
        raise TranscriptMissing(f"this node was not hop {hop} of {job_id}", job_id=job_id)
    return web.Response(body=body, content_type=transcript_format.CONTENT_TYPE)


def _hop(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 3 or int(raw) > 255:
        raise ProtocolError("hop: expected an integer 0..255", field="hop")
    return int(raw)


def add_transcript_routes(app: web.Application, access: TranscriptAccess | None) -> None:
    if access is not None:
        app[ACCESS] = access
    app.router.add_get("/jobs/{job_id}/transcript", transcript)
