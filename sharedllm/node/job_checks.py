"""The JobMarket's ``submitResult`` checks, applied by a node before it serves a job.

A node that serves a job the chain would later refuse works for nothing, so it runs the same
checks, in the same order, and refuses with the same code (the contract's custom error name,
see ``sharedllm.protocol.codes``). Two checks are stricter here than on-chain because the node
looks ahead: it needs the escrow to cover ``maxTokens`` (the chain only checks the tokens
actually served), not counting a pending withdrawal that could land before the deadline; and
it refuses deadlines further away than the market's ``maxJobTtl``, so the client's withdrawal
delay always outlasts the job.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sharedllm.errors import JobRejected
from sharedllm.protocol import codes
from sharedllm.protocol.amendment import Amendment, amendment_signer
from sharedllm.protocol.job import Job, job_id
from sharedllm.protocol.types import JobId


@dataclass(frozen=True)
class HopRecord:
    """What the registry says about one route node."""

    active: bool
    model_id: str
    start: int
    end: int
    price_per_token: int
    pubkey: bytes = b""  # ed25519, checks the hop's receipts


class JobView(Protocol):
    """The chain state the checks read; ``ChainJobView`` reads it from a real chain."""

    chain_id: int
    market: str
    max_job_ttl: int

    def signature_valid(self, job: Job, job_hash: JobId, signature: bytes) -> bool: ...
    def job_known(self, job_hash: JobId) -> bool: ...
    def hop(self, node: str) -> HopRecord: ...
    def available_escrow(self, client: str, until: int) -> int: ...


def route_price(job: Job, hops: list[HopRecord]) -> int:
    """SHARE wei per token over the whole route: each hop's layers in the job (a part of its
    registered span, maybe) times its per-layer price."""
    spans = zip(job.span_starts, job.span_ends, hops, strict=True)
    return sum((end - start) * h.price_per_token for start, end, h in spans)


def check_job(
    job: Job,
    signature: bytes,
    node: str,
    view: JobView,
    *,
    tokens: int,
    reserved: int = 0,
    now: int | None = None,
) -> tuple[JobId, list[HopRecord]]:
    """Raise ``JobRejected`` with the contract's code for the first failing check.

    ``tokens`` is how many positions the client asks this session to hold (at most
    ``maxTokens``); ``reserved`` is escrow this node has already promised to other open jobs
    of the same client. Returns the job's id and the route's registry records.
    """
    now = int(time.time()) if now is None else now
    job.check_route()
    if node not in job.route:
        raise JobRejected(f"this node ({node}) is not in the job's route", code="NotRouteNode")
    jid = job_id(job, view.chain_id, view.market)
    if not view.signature_valid(job, jid, signature):
        raise JobRejected(
            f"the job is not signed by its client {job.client}", code=codes.INVALID_SIGNATURE
        )
    if now > job.deadline:
        raise JobRejected(
            f"the job's deadline {job.deadline} has passed (now {now})", code=codes.JOB_EXPIRED
        )
    if job.deadline > now + view.max_job_ttl:
        raise JobRejected(
            f"the job's deadline is more than {view.max_job_ttl} s away", code="DeadlineTooFar"
        )
    if view.job_known(jid):
        raise JobRejected(f"job {jid} was already submitted", code=codes.JOB_ALREADY_SUBMITTED)
    if tokens > job.max_tokens:
        raise JobRejected(
            f"the session asks for {tokens} tokens, the job allows {job.max_tokens}",
            code=codes.TOO_MANY_TOKENS,
        )
    hops = [
        _registered(job, view, address, start, end, "route node")
        for address, start, end in zip(job.route, job.span_starts, job.span_ends, strict=True)
    ]
    need = job.max_tokens * route_price(job, hops) + reserved
    have = view.available_escrow(job.client, job.deadline)
    if have < need:
        raise JobRejected(
            f"client {job.client} has {have} wei of usable escrow, the job needs {need}",
            code=codes.INSUFFICIENT_ESCROW,
            have=have,
            need=need,
        )
    return jid, hops


def _registered(job: Job, view: JobView, address: str, start: int, end: int, who: str) -> HopRecord:
    """Check 6 for one node serving layers ``start:end`` of the job: active, on the job's
    model, registered for a span that holds those layers, under the price cap."""
    hop = view.hop(address)
    if not hop.active:
        raise JobRejected(f"{who} {address} is not active", code=codes.NODE_NOT_ACTIVE)
    if hop.model_id.lower() != job.model_id.lower():
        raise JobRejected(
            f"{who} {address} serves model {hop.model_id}, not {job.model_id}",
            code=codes.MODEL_MISMATCH,
        )
    if not hop.start <= start < end <= hop.end:
        raise JobRejected(
            f"{who} {address} serves layers {hop.start}:{hop.end}, which do not hold {start}:{end}",
            code=codes.SPAN_MISMATCH,
        )
    if hop.price_per_token > job.max_price_per_token:
        raise JobRejected(
            f"{who} {address} charges {hop.price_per_token} per layer-token, "
            f"above the job's cap {job.max_price_per_token}",
            code=codes.PRICE_ABOVE_CAP,
        )
    return hop


def check_amendments(
    job: Job, jid: JobId, amendments: Sequence[Amendment], view: JobView
) -> tuple[dict[str, HopRecord], int]:
    """``submitAmended``'s checks of each amendment, with the contract's codes: signed by the
    client (ECDSA: a node cannot ask a contract wallet), the replacement active, on the job's
    model and the hop's span, under the price cap. Returns the replacements' registry records
    and the most they can add to the job's cost (each paid for ``maxTokens`` positions, its
    replay included), which the client's escrow must cover on top of the job's own."""
    records: dict[str, HopRecord] = {}
    extra = 0
    job_hash = bytes.fromhex(jid[2:])
    for i, a in enumerate(amendments):
        if amendment_signer(a, job_hash, view.chain_id, view.market) != job.client:
            raise JobRejected(
                f"amendment {i} is not signed by the job's client {job.client}",
                code=codes.INVALID_AMENDMENT_SIGNATURE,
            )
        start, end = job.span_starts[a.hop], job.span_ends[a.hop]
        record = _registered(job, view, a.replacement, start, end, "replacement")
        records[a.replacement] = record
        extra += job.max_tokens * (end - start) * record.price_per_token
    return records, extra
