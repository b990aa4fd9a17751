"""A job's wallet answer (``POST /api/jobs/{id}/signature``) and its on-chain status
(``GET /api/jobs/{id}``).

Statuses are those of ``sharedllm jobs``: signed, served, committed (submitted, payment
locked until the challenge window ends), challenged (frozen: a dispute is open), under review
(the jury votes), upheld (refunded), finalized, expired.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sharedllm.chain.connection import Chain
from sharedllm.client.job_book import JobBook
from sharedllm.client.jobs_view import ON_CHAIN, SETTLED, dispute_of, on_chain_status, refresh
from sharedllm.errors import ConfigError, NotWaiting, ProtocolError, UnknownJob
from sharedllm.gateway.wallet_payer import PendingSignatures
from sharedllm.protocol.types import JobId

SIGNATURE_HEX_CHARS = 2 + 65 * 2


def parse_signature_body(body: Any) -> bytes | None:
    """``{"signature": "0x…"}`` → 65 bytes; ``{"refused": true}`` → None."""
    if not isinstance(body, dict):
        raise ProtocolError("body: expected a JSON object", field="body")
    unknown = sorted(set(body) - {"signature", "refused"})
    if unknown:
        raise ProtocolError(f"{unknown[0]}: unknown field", field=unknown[0])
    if body.get("refused") is True and "signature" not in body:
        return None
    if "refused" in body and body["refused"] is not False:
        raise ProtocolError("refused: expected true, without a signature", field="refused")
    signature = body.get("signature")
    if not isinstance(signature, str) or len(signature) != SIGNATURE_HEX_CHARS:
        raise ProtocolError("signature: expected 0x + 130 hex digits", field="signature")
    try:
        return bytes.fromhex(signature.removeprefix("0x"))
    except ValueError:
        raise ProtocolError("signature: not hex", field="signature") from None


def deliver(pending: PendingSignatures, jid: JobId, signature: bytes | None) -> dict[str, Any]:
    if not pending.answer(jid, signature):
        raise NotWaiting(f"job {jid} is not waiting for a signature", job_id=jid)
    return {"jobId": jid, "accepted": signature is not None}


async def job_status(chain: Chain, book: JobBook, jid: JobId) -> dict[str, Any]:
    return await asyncio.to_thread(_job_status, chain, book, jid)


def _job_status(chain: Chain, book: JobBook, jid: JobId) -> dict[str, Any]:
    window = int(chain.market.params()["challengeWindow"])
    try:
        booked = book.get(jid)
    except ConfigError:
        booked = None
    if booked is not None:
        body = refresh(chain, [booked])[0].to_json()
    else:
        record = chain.market.get_job(jid)
        if record.status not in ON_CHAIN:
            raise UnknownJob(f"no job {jid} in this gateway's book or on-chain", job_id=jid)
        dispute = dispute_of(chain, jid)
        body = {
            "jobId": jid,
            "status": on_chain_status(record.status, dispute),
            "dispute": dispute,
            "client": record.client,
            "tokens": record.tokens_served,
            "cost": str(record.cost),
            "submittedAt": record.submitted_at,
        }
    submitted = body.get("submittedAt")
    body["challengeEndsAt"] = submitted + window if submitted else None
    body["settled"] = body["status"] in SETTLED
    return body
