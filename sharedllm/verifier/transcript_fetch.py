"""Fetch one hop's transcript of a job from the node that served it, as a staked verifier.

The request is signed for that node and job (``protocol.transcript_auth``); the body is the
node's stored transcript (``protocol.transcript_format``). Every way the fetch can fail ends
in ``TranscriptUnavailable`` with one of three codes, because the verifier's next move
depends only on which: a refusal or a timeout may be retried, a missing transcript for a
committed job counts against the node, and a body that does not parse is the node's fault.
"""

from __future__ import annotations

import dataclasses
import ssl
import time

import aiohttp
from eth_account.signers.local import LocalAccount

from sharedllm.errors import ProtocolError, TranscriptUnavailable
from sharedllm.protocol import transcript_format
from sharedllm.protocol.transcript_auth import DEFAULT_LIFETIME_S, sign_request
from sharedllm.protocol.types import parse_address, parse_job_id
from sharedllm.verifier.recompute import HopTranscript


async def fetch_transcript(
    http: aiohttp.ClientSession,
    node_url: str,
    node_address: str,
    job_id: str,
    hop: int,
    account: LocalAccount,
    chain_id: int,
    market: str,
    timeout_s: float = 30.0,
    link: ssl.SSLContext | None = None,
) -> HopTranscript:
    """Hop ``hop``'s transcript of ``job_id`` from the node at ``node_url``.

    ``link`` is the TLS context pinned to the node's registered key, for an https node.
    The result carries per step the input and output as float32 [T, hidden], this hop's own
    receipt per step in ``receipts`` and every receipt the node held in ``chains``.
    Receipt hashes and signatures are not judged here: a transcript that contradicts its
    receipts is evidence against the node, which ``check_hop`` reports as such.
    """
    node = parse_address(node_address, "node_address")
    jid = parse_job_id(job_id, "job_id")
    expires = int(time.time()) + DEFAULT_LIFETIME_S
    headers = sign_request(account, chain_id, market, node, jid, expires)
    url = f"{node_url.rstrip('/')}/jobs/{jid}/transcript"
    where = {"node_url": node_url, "job_id": jid, "hop": hop}
    try:
        async with http.get(
            url,
            params={"hop": str(hop)},
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            ssl=link or True,
        ) as response:
            body = await response.read()
            status = response.status
            node_code = await _error_code(response) if status != 200 else None
    except TimeoutError:
        raise TranscriptUnavailable(
            f"{node_url} did not send the transcript within {timeout_s:.0f} s", **where
        ) from None
    except aiohttp.ClientError as exc:
        raise TranscriptUnavailable(f"{node_url} could not be reached: {exc}", **where) from None
    if status == 404:
        raise TranscriptUnavailable(
            f"{node_url} has no transcript of {jid}",
            code="TRANSCRIPT_MISSING",
            status=status,
            node_code=node_code,
            **where,
        )
    if status != 200:
        raise TranscriptUnavailable(
            f"{node_url} refused the transcript: HTTP {status} {node_code or ''}".rstrip(),
            status=status,
            node_code=node_code,
            **where,
        )
    return _parse(body, jid, hop, where)


def _parse(body: bytes, job_id: str, hop: int, where: dict) -> HopTranscript:
    try:
        stored = transcript_format.decode(body)
        if stored.job_id != job_id or stored.hop != hop:
            raise ProtocolError(
                f"got hop {stored.hop} of {stored.job_id}, asked for hop {hop} of {job_id}",
                field="meta",
            )
        transcript = HopTranscript.from_bytes(
            stored.step_bytes("inputs"),
            stored.step_bytes("outputs"),
            stored.hidden,
            stored.own_receipts(),
        )
    except ProtocolError as exc:
        raise TranscriptUnavailable(
            f"the transcript does not parse: {exc.message}",
            code="TRANSCRIPT_MALFORMED",
            cause=exc.code,
            **where,
        ) from exc
    return dataclasses.replace(transcript, chains=stored.receipts)


async def _error_code(response: aiohttp.ClientResponse) -> str | None:
    """The node's stable error code from its JSON error body, if it sent one."""
    try:
        body = await response.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None
