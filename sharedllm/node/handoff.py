"""Taking over a job's submission when the route's last hop died mid-answer.

Only the last hop ever holds every hop's receipts, so when it dies the job it was serving
would never reach the chain and no hop of it would be paid. The client still holds the
receipts of every step it got an answer for, and hands them to a surviving hop of that route.
The survivor checks them against its own ledger (the client cannot change what this hop or
the hops before it signed), against the registry's keys and as one unbroken chain per step,
then records them and submits the job itself. Only steps whose chain reaches the last hop
count: the tokens are the positions of those steps, and the ledger row is what the settler
(and a restarted node) acts on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

from sharedllm.errors import HandoffRefused, JobUnknown, ProtocolError
from sharedllm.node.bodies import read_json
from sharedllm.node.ledger import SERVED, Ledger
from sharedllm.protocol.amendment import holder, parse_amendments
from sharedllm.protocol.receipt_handoff import parse_handoff
from sharedllm.protocol.receipts import Receipt, check_chain, job_commitment
from sharedllm.protocol.types import parse_job_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TakenOver:
    job_id: str
    steps: int
    tokens: int
    commitment: str


class ReceiptHandoff:
    def __init__(
        self,
        ledger: Ledger,
        pubkeys: Callable[[Sequence[str]], list[bytes]],
        poke: Callable[[], None],
    ) -> None:
        """``pubkeys`` reads the registry's receipt key of each node (blocking)."""
        self.ledger = ledger
        self.pubkeys = pubkeys
        self.poke = poke

    def accept(self, job_id: str, steps: list[list[Receipt]]) -> TakenOver:
        """Check the handed receipts and make this node the job's submitter (blocking)."""
        entry = self.ledger.get(job_id)
        if entry is None:
            raise JobUnknown(f"{job_id} was not served here", job_id=job_id)
        if entry.hop == entry.hops - 1:
            raise HandoffRefused(
                "this node is the job's last hop and submits it itself", code="HANDOFF_NOT_NEEDED"
            )
        if entry.status != SERVED or entry.handed_over:
            raise HandoffRefused(
                f"{job_id} is already {entry.status}"
                + (" and handed over" if entry.handed_over else ""),
                code="JobAlreadySubmitted",
                job_id=job_id,
            )
        complete = _complete_steps(steps, entry.hops)
        _check_identity(complete, bytes.fromhex(job_id[2:]))
        held = self.ledger.receipts_by_position(job_id)
        for step, chain in enumerate(complete):
            for hop in range(entry.hop + 1):
                # What this hop signed, and the upstream receipts it checked, are on record.
                if held.get((step, hop)) != chain[hop].to_hex():
                    raise ProtocolError(
                        f"step {step}: hop {hop}'s receipt is not the one this node recorded",
                        code="RECEIPT_DIFFERS",
                        step=step,
                        hop=hop,
                    )
        route = entry.job["route"]
        amendments = parse_amendments(entry.amendments, entry.hops)
        nodes = [*route, *(a.replacement for a in amendments)]
        keys = dict(zip(nodes, self.pubkeys(nodes), strict=True))
        for chain in complete:
            for receipt in chain:
                # Signed by whoever served that hop at that position (amendments.py).
                receipt.verify(keys[holder(route, amendments, receipt.hop, receipt.start_pos)])
        flat = [r for chain in complete for r in chain]
        tokens = check_chain(flat, entry.hops)
        commitment = "0x" + job_commitment(flat).hex()
        rows = [(r.step, r.hop, r.to_hex()) for r in flat]
        if not self.ledger.take_over(job_id, tokens, commitment, rows):
            raise HandoffRefused(f"{job_id} changed while checking", code="JobAlreadySubmitted")
        self.poke()
        log.info("took over job %s: %d steps, %d tokens", job_id, len(complete), tokens)
        return TakenOver(job_id, len(complete), tokens, commitment)


def _complete_steps(steps: list[list[Receipt]], hops: int) -> list[list[Receipt]]:
    """The leading steps whose chain reaches the last hop; a step the client never got an
    answer for ends the run, since every later step was built on it."""
    complete = []
    for chain in steps:
        if len(chain) != hops:
            break
        complete.append(chain)
    if not complete:
        raise ProtocolError("no step has a receipt from every hop", code="RECEIPT_MISSING")
    return complete


def _check_identity(steps: list[list[Receipt]], job: bytes) -> None:
    for step, chain in enumerate(steps):
        for hop, receipt in enumerate(chain):
            if receipt.job_id != job or receipt.hop != hop or receipt.step != step:
                raise ProtocolError(
                    f"receipts[{step}][{hop}] is for another job, hop or step",
                    code="RECEIPT_MISMATCH",
                    step=step,
                    hop=hop,
                )


HANDOFF = web.AppKey("handoff", ReceiptHandoff)
MAX_HANDOFF_BODY = 32 << 20


async def take_receipts(request: web.Request) -> web.Response:
    job_id = parse_job_id(request.match_info["job_id"], "job_id").lower()
    # One receipt per hop and step, at most one step per position of the longest session.
    body = await read_json(request, MAX_HANDOFF_BODY)
    steps = parse_handoff(body)
    handoff = request.app.get(HANDOFF)
    if handoff is None:
        raise JobUnknown("this node serves free sessions and submits no jobs")
    taken = await asyncio.to_thread(handoff.accept, job_id, steps)
    return web.json_response(
        {
            "job_id": taken.job_id,
            "steps": taken.steps,
            "tokens": taken.tokens,
            "commitment": taken.commitment,
        }
    )


def add_handoff_routes(app: web.Application, handoff: ReceiptHandoff | None) -> None:
    if handoff is not None:
        app[HANDOFF] = handoff
    app.router.add_post("/jobs/{job_id}/receipts", take_receipts)
