"""Admission for a paid network: serve only signed, prepaid jobs; sign a receipt per step.

Opening a session runs the JobMarket's own checks (``job_checks``) against the chain. While
the session runs, every step this hop computes gets a receipt signed with the node's ed25519
key; receipts from earlier hops arrive with the input and are checked against the keys the
registry holds, so a hop never builds on a broken chain. When the session closes the job and
its receipts go to the ledger, and the last hop's settler submits the commitment. The
session's inputs, outputs and receipts are kept on disk as the job's transcript, written
before the ledger row so that every job the ledger knows has one; while the session runs,
each step goes to the job's journal first (``step_journal``), so that a crash mid-answer
leaves the work done so far provable.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nacl.signing import SigningKey

from sharedllm.errors import JobRejected, ProtocolError, SessionUnknown
from sharedllm.node import step_journal
from sharedllm.node.admission import Admission
from sharedllm.node.chain_view import ChainJobView
from sharedllm.node.job_checks import HopRecord, check_amendments, check_job, route_price
from sharedllm.node.ledger import Ledger
from sharedllm.node.settlement import Settler
from sharedllm.node.step_journal import JournalHeader
from sharedllm.node.transcripts import TranscriptStore
from sharedllm.protocol import codes
from sharedllm.protocol.amendment import Amendment, holder
from sharedllm.protocol.job import Job, job_id
from sharedllm.protocol.receipts import Receipt, job_commitment, tensor_hash
from sharedllm.protocol.session_msgs import OpenSession
from sharedllm.protocol.transcript_format import Transcript
from sharedllm.protocol.types import JobId

if TYPE_CHECKING:  # sessions imports the span worker; this module only names its records
    from sharedllm.node.sessions import StepRecord

log = logging.getLogger(__name__)


@dataclass
class PaidSession:
    job: Job
    job_id: str
    signature: str
    hop: int
    pubkeys: list[bytes]  # per hop, from the registry
    max_cost: int
    receipts: dict[int, list[Receipt]] = field(default_factory=dict)  # step -> hops 0..this
    amendments: tuple[Amendment, ...] = ()  # the client's hop replacements so far
    replacements: dict[str, HopRecord] = field(default_factory=dict)  # their registry records

    def key(self, hop: int, position: int) -> bytes:
        """The receipt key of the node that served ``hop`` at ``position``."""
        node = holder(self.job.route, self.amendments, hop, position)
        return self.pubkeys[hop] if node == self.job.route[hop] else self.replacements[node].pubkey


class PaidAdmission(Admission):
    limits_per_client = False

    def __init__(
        self,
        view: ChainJobView,
        address: str,
        key: SigningKey,
        ledger: Ledger,
        settler: Settler,
        transcripts: TranscriptStore,
    ) -> None:
        self.view = view
        self.address = address
        self.key = key
        self.ledger = ledger
        self.settler = settler
        self.transcripts = transcripts
        self._sessions: dict[str, PaidSession] = {}
        self._reserved: dict[str, int] = defaultdict(int)  # client -> max cost of open jobs
        self._lock = asyncio.Lock()

    async def admit(self, request: OpenSession) -> None:
        if request.job is None or request.signature is None:
            raise JobRejected(
                "this node serves paid jobs only: the open request needs a job and a signature",
                code="JobRequired",
            )
        job = Job.from_json(request.job)
        signature = _hex_bytes(request.signature, "signature")
        spans = [(h.start, h.end) for h in request.route]
        # A replacement opens with the amendments that hand it the hop (the last one does).
        serves = holder(job.route, request.amendments, request.hop_index, 1 << 32)
        if spans != list(zip(job.span_starts, job.span_ends, strict=True)) or (
            serves != self.address
        ):
            raise JobRejected(
                "the session's route does not match the job's route", code="InvalidRoute"
            )
        async with self._lock:  # one check at a time, so reservations cannot race
            if any(s.job == job for s in self._sessions.values()):
                raise JobRejected("this job is already being served", code="JobAlreadySubmitted")
            jid = job_id(job, self.view.chain_id, self.view.market)
            if self.ledger.get(jid) is not None:
                raise JobRejected("this job was already served", code="JobAlreadySubmitted")
            reserved = self._reserved[job.client]
            replacements, extra = await asyncio.to_thread(
                check_amendments, job, jid, request.amendments, self.view
            )
            jid, hops = await asyncio.to_thread(
                check_job,
                job,
                signature,
                job.route[request.hop_index],
                self.view,
                tokens=request.max_length,
                reserved=reserved + extra,
            )
            self.transcripts.reserve(request.session_id, request.max_length, request.hop_index)
            max_cost = job.max_tokens * route_price(job, hops) + extra
            self._reserved[job.client] += max_cost
            self._sessions[request.session_id] = PaidSession(
                job,
                jid,
                request.signature,
                request.hop_index,
                [h.pubkey for h in hops],
                max_cost,
                amendments=request.amendments,
                replacements=replacements,
            )
        log.info("admitted job %s for session %s", jid, request.session_id)

    async def amend(
        self, session_id: str, amendments: tuple[Amendment, ...], position: int
    ) -> None:
        """Take the client's amendments of a job this node serves: a replacement for another
        hop, from a position on. The list must extend the one held; each new amendment must
        be the client's, name a node registered for that hop, and agree with the receipts
        held (the old holder served no position at or past it) and with this hop's own
        steps (it cannot start past the positions this hop has run)."""
        paid = self._sessions.get(session_id)
        if paid is None:
            raise SessionUnknown(f"no paid session {session_id}", session_id=session_id)
        held = len(paid.amendments)
        if amendments[:held] != paid.amendments:
            raise JobRejected(
                "amendments: the list does not extend the one this node holds",
                code=codes.INVALID_AMENDMENT,
            )
        added = amendments[held:]
        for a in added:
            refusal = amendment_conflict(paid.hop, position, paid.receipts.values(), a)
            if refusal is not None:
                raise JobRejected(refusal, code=codes.INVALID_AMENDMENT)
        async with self._lock:
            replacements, extra = await asyncio.to_thread(
                check_amendments, paid.job, JobId(paid.job_id), added, self.view
            )
            paid.amendments = amendments
            paid.replacements.update(replacements)
            paid.max_cost += extra
            self._reserved[paid.job.client] += extra
        log.info("job %s amended: %s", paid.job_id, [a.to_json() for a in added])

    def replayed_receipts(
        self, session_id: str, chains: list[list[Receipt]], steps: Sequence[StepRecord]
    ) -> int:
        """Take the receipt chains of the steps this replacement replayed (hops 0..this, the
        old holder's receipt last), so that as the route's new last hop it holds every
        step's chain and can submit the job. Each chain must be for this job, hop and step,
        over the replayed step's positions, unbroken, reach this hop's replayed input, and be
        signed by the nodes that served those positions. Returns the steps taken."""
        paid = self._sessions.get(session_id)
        if paid is None:
            raise SessionUnknown(f"no paid session {session_id}", session_id=session_id)
        job = bytes.fromhex(paid.job_id[2:])
        if len(chains) > len(steps) or any(step in paid.receipts for step in range(len(chains))):
            raise ProtocolError(
                "receipts: only for replayed steps this hop holds none for",
                code="RECEIPT_MISMATCH",
            )
        checked: dict[int, list[Receipt]] = {}
        for step, chain in enumerate(chains):
            record = steps[step]
            check_replayed_chain(
                chain, job, paid.hop, step, record.start_pos, record.length,
                tensor_hash(record.input), paid.key,
            )  # fmt: skip
            checked[step] = chain
        paid.receipts.update(checked)
        return len(checked)

    def receipts(
        self,
        session_id: str,
        step: int,
        upstream: list[str],
        data: bytes,
        output: bytes,
        start_pos: int,
        positions: int,
    ) -> list[str]:
        """Check the upstream receipts for ``data`` and add this hop's; returns the chain."""
        paid = self._sessions[session_id]
        chain = [Receipt.from_hex(r) for r in upstream]
        if len(chain) != paid.hop:
            raise ProtocolError(
                f"step {step}: expected {paid.hop} upstream receipts, got {len(chain)}",
                code="RECEIPT_MISSING",
            )
        input_hash = tensor_hash(data)
        for i, receipt in enumerate(chain):
            if receipt.job_id.hex() != paid.job_id[2:] or receipt.hop != i or receipt.step != step:
                raise ProtocolError(
                    f"receipt {i} is for another job, hop or step", code="RECEIPT_MISMATCH"
                )
            if (receipt.start_pos, receipt.positions) != (start_pos, positions):
                raise ProtocolError(
                    f"step {step}: hop {i} signed other positions than this step's",
                    code="RECEIPT_MISMATCH",
                )
            receipt.verify(paid.key(i, start_pos))
        if chain and chain[-1].output_hash != input_hash:
            raise ProtocolError(
                f"step {step}: the input is not what hop {paid.hop - 1} signed for",
                code="RECEIPT_CHAIN_BROKEN",
            )
        mine = Receipt(
            bytes.fromhex(paid.job_id[2:]),
            paid.hop,
            step,
            start_pos,
            positions,
            input_hash,
            tensor_hash(output),
        ).signed(self.key)
        chain.append(mine)
        paid.receipts[step] = chain
        # On disk before the output leaves for the next hop: no later hop or client can hold
        # a receipt of this step that this hop could not back with its rows.
        header = JournalHeader(
            paid.job.to_json(), paid.signature, paid.hop, len(paid.job.route),
            self.transcripts.hidden_size,
        )  # fmt: skip
        step_journal.append_step(
            self.transcripts, paid.job_id, header, step, start_pos, positions, data, output, chain
        )
        return [r.to_hex() for r in chain]

    async def closed(self, request: OpenSession, steps: Sequence[StepRecord] = ()) -> None:
        paid = self._sessions.pop(request.session_id, None)
        if paid is None:
            return
        async with self._lock:
            self._reserved[paid.job.client] -= paid.max_cost
        try:
            receipts = [r for step in range(len(steps)) for r in paid.receipts.get(step, ())]
            tokens_served = sum(s.length for s in steps)
            if tokens_served == 0 or not receipts or not steps:
                step_journal.discard(self.transcripts, paid.job_id)
                return
            await asyncio.to_thread(self.transcripts.write, self._transcript(paid, steps, receipts))
        finally:
            self.transcripts.release(request.session_id)
        hops = len(paid.job.route)
        self.ledger.record_served(
            paid.job_id,
            paid.job.to_json(),
            paid.signature,
            paid.hop,
            hops,
            tokens_served,
            "0x" + job_commitment(receipts).hex(),
            [(r.step, r.hop, r.to_hex()) for r in receipts],
            amendments=[a.to_json() for a in paid.amendments],
        )
        step_journal.discard(self.transcripts, paid.job_id)  # the transcript stands for it now
        self.settler.poke()

    def _transcript(
        self, paid: PaidSession, steps: Sequence[StepRecord], receipts: list[Receipt]
    ) -> Transcript:
        return Transcript(
            JobId(paid.job_id),
            paid.hop,
            self.transcripts.hidden_size,
            tuple(s.length for s in steps),
            b"".join(s.input for s in steps),
            b"".join(s.output for s in steps),
            tuple(receipts),
        )


def check_replayed_chain(
    chain: Sequence[Receipt],
    job: bytes,
    hop: int,
    step: int,
    start_pos: int,
    positions: int,
    input_hash: bytes,
    key: Callable[[int, int], bytes],
) -> None:
    """One replayed step's receipt chain, as a replacement at ``hop`` takes it: hops 0..hop
    (the old holder's receipt last), each for this job, hop, step and the step's positions,
    linked output to input, the last reaching this hop's replayed input (``input_hash``),
    each signed with ``key(hop, position)``, the key of the node that served it then."""
    if len(chain) != hop + 1:
        raise ProtocolError(f"receipts[{step}]: expected hops 0..{hop}", code="RECEIPT_MISSING")
    for i, receipt in enumerate(chain):
        if (receipt.job_id, receipt.hop, receipt.step) != (job, i, step) or (
            receipt.start_pos,
            receipt.positions,
        ) != (start_pos, positions):
            raise ProtocolError(
                f"receipts[{step}][{i}] is for another job, hop, step or positions",
                code="RECEIPT_MISMATCH",
            )
        if i < hop and receipt.output_hash != chain[i + 1].input_hash:
            raise ProtocolError(
                f"receipts[{step}]: hop {i}'s output is not hop {i + 1}'s input",
                code="RECEIPT_CHAIN_BROKEN",
            )
        receipt.verify(key(i, start_pos))
    if chain[-1].input_hash != input_hash:
        raise ProtocolError(
            f"receipts[{step}]: the chain does not reach this hop's replayed input",
            code="RECEIPT_CHAIN_BROKEN",
        )


def amendment_conflict(
    hop: int, position: int, chains: Iterable[Sequence[Receipt]], a: Amendment
) -> str | None:
    """Why hop ``hop`` (its session at ``position``, holding these receipt chains) must not
    take amendment ``a``, or None. A client could otherwise hand a hop to another node from
    an earlier position than the one where its holder stopped, and so not pay the holder for
    positions it served (the chains show its receipts past that position); or amend this
    node's own hop, or from a position this hop has not reached."""
    if a.hop == hop:
        return f"amendment names hop {a.hop}, which this node serves"
    if a.from_position > position:
        return f"amendment starts at position {a.from_position}, past this hop's {position}"
    served = [chain[a.hop].end_pos for chain in chains if len(chain) > a.hop]
    if served and max(served) > a.from_position:
        return (
            f"hop {a.hop} already served to position {max(served)}, past the amendment's "
            f"{a.from_position}"
        )
    return None


def _hex_bytes(value: str, field: str) -> bytes:
    try:
        return bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise ProtocolError(f"{field}: expected hex", field=field) from None
