"""The verifier service: follow commitments, draw which to check, check them, dispute; sit on
juries; move disputes along.

One pass (``run_once``) reads the commitments, disputes and jury draws mined since the
ledger's cursor, draws for each commitment (``selection``), moves open disputes and this
verifier's jury cases along (``jury``), and then works through the selected jobs oldest
first, so the job whose window closes soonest goes first. A job is marked ``checking``
before any work; before every transaction the chain is asked whether this verifier's
dispute is already there. CPU work (recomputing spans) runs in a worker thread, so the
event loop keeps fetching.

A fault found in the bookkeeping that the chain can check itself (an over-charge: more
positions charged than the committed receipts prove) is proven to the market directly, with
no jury. Every other fault opens a dispute with a bond, to be decided by a jury.

Batches (``batch_audit``) are read and checked whole as they are posted; the jobs drawn from
them are checked like the others, and a fault in one takes that job out of its batch to be
proven or disputed on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import aiohttp
import torch
from eth_account.signers.local import LocalAccount

from sharedllm.chain.batch_tree import entry_ref
from sharedllm.chain.connection import Chain
from sharedllm.chain.court import FAULT, WITHHOLDING
from sharedllm.errors import ContractRevert, SharedLLMError, WindowClosing
from sharedllm.model.store import ModelStore
from sharedllm.protocol.receipts import proven_positions
from sharedllm.verifier.batch_audit import BatchDesk, Placed
from sharedllm.verifier.checker import Finding, commitment_preimage, committed_receipts
from sharedllm.verifier.events import ChainEvents, Commitment
from sharedllm.verifier.inspection import Fetch, Gathered, Inspector, Runners, Timing
from sharedllm.verifier.jury import JuryDesk
from sharedllm.verifier.ledger import (
    CHALLENGED,
    CHECKING,
    MISSED,
    OPEN,
    PASSED,
    UPHELD,
    Evidence,
    LedgerJob,
    SeenJob,
    VerifierLedger,
)
from sharedllm.verifier.recompute import HopTranscript
from sharedllm.verifier.selection import SelectionPolicy
from sharedllm.verifier.tolerance import TolerancePolicy
from sharedllm.verifier.transcript_fetch import fetch_transcript

log = logging.getLogger(__name__)

# Reasons that mean the hop did not show its transcript: a withholding claim, whose rejection
# (the hop shows up inside its response window) returns the bond.
_WITHHELD = ("transcript_missing", "transcript_refused")


class VerifierService:
    def __init__(
        self,
        chain: Chain,
        account: LocalAccount,
        ledger: VerifierLedger,
        store: ModelStore,
        selection: SelectionPolicy,
        *,
        policy: TolerancePolicy | None = None,
        fetch: Fetch = fetch_transcript,
        timing: Timing | None = None,
        report: Callable[[str], None] = lambda line: print(line, flush=True),
        fault: Callable[[str], None] | None = None,
        bond: int | None = None,
        device: torch.device | None = None,
    ) -> None:
        """``fault`` is a test's fault point (``sharedllm.testing.faulty_verifier``), called
        by name in the middle of a check (``mid_check``, once the transcripts arrived), right
        after a dispute is mined, before the ledger records it (``after_challenge``), and
        before a juror reveals (``before_reveal``). ``bond`` is posted with each dispute
        (default: the court's minimum)."""
        self.fault = fault
        self.chain = chain
        self.account = account
        self.ledger = ledger
        self.selection = selection
        self.report = report
        self.runners = Runners(store, device)
        self.events = ChainEvents(chain)
        self.inspector = Inspector(
            chain, account, ledger, self.runners, policy or TolerancePolicy(), fetch, timing
        )
        self.timing = self.inspector.timing
        self.jury = JuryDesk(chain, account, ledger, self.inspector, report, fault)
        self.batches = BatchDesk(
            chain, account, ledger, selection, report, self.events.block_hash,
            self.events.chain_time,
        )  # fmt: skip
        self.window = int(chain.market.params()["challengeWindow"])
        court = chain.court.params()
        self.bond = int(court["minBond"]) if bond is None else bond
        self.quorum = int(court["jurySize"]) // 2 + 1

    # -- the loop --------------------------------------------------------------------------

    async def run(self, interval: float = 1.0, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        async with aiohttp.ClientSession() as http:
            self.inspector.http = http
            while not stop.is_set():
                try:
                    await self.run_once()
                except SharedLLMError as exc:  # the RPC may be down for a while; keep going
                    log.warning("verifier pass: %s", exc)
                except Exception:  # one bad pass must not stop the verifier for good
                    log.exception("verifier pass failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)

    async def run_once(self) -> None:
        await asyncio.to_thread(self.scan)
        await self.batches.work()
        await self.jury.work()
        for job in list(self.ledger.with_status(*OPEN)):
            await self.process(job)

    def scan(self) -> int:
        """Record the commitments, disputes and jury draws below the newest block that has a
        successor; returns how many commitments were new. A commitment in the newest block
        waits a pass for its random block."""
        cursor = self.ledger.cursor(self.chain.deployment.deploy_block)
        last = self.events.head() - 1
        if last < cursor:
            return 0
        seen = [self._draw(c) for c in self.events.commitments(cursor, last)]
        disputes, cases = self.events.disputes(cursor, last, self.account.address)
        batches = self.events.batches(cursor, last)
        self.ledger.record_seen(seen, last + 1, disputes, cases, batches)
        self.batches.note_submitted([job.job_id for job in seen])
        for case in cases:
            log.info("drawn as a juror for job %s (round %d)", case.job_id, case.round)
        for job in seen:  # a selected job is what an operator watches; a skipped one is not
            log.log(logging.INFO if job.selected else logging.DEBUG,
                    "job %s at block %d: %s (draw %s)", job.job_id, job.block,
                    "selected" if job.selected else "skipped", job.random[:12])  # fmt: skip
        return len(seen)

    def _draw(self, c: Commitment) -> SeenJob:
        random_block = self.events.block_hash(c.block + 1)
        draw = self.selection.draw(random_block, c.job_id, self.account.address)
        return SeenJob(c.job_id, c.block, c.submitter, c.commitment, draw.hex, draw.selected)

    # -- one job ---------------------------------------------------------------------------

    async def process(self, job: LedgerJob) -> str:
        """Check one selected job and settle its ledger row; returns the new status."""
        placed = None
        if job.batch_id is not None:
            placed = await asyncio.to_thread(self.batches.place, job.job_id)
            if placed is None:
                return self._missed(job.job_id, "its batch's jobs are not known here")
        if await self._settled_on_chain(job):
            return self.ledger.get(job.job_id).status
        if placed is not None:
            record = placed.record()
        else:
            record = await asyncio.to_thread(self.chain.market.get_job, job.job_id)
        ends = record.submitted_at + self.window
        self.ledger.set_status(job.job_id, CHECKING)
        try:
            evidence = await self.inspector.gather(job.job_id, record, ends)
            if self.fault is not None:
                self.fault("mid_check")
            finding = await self.inspector.find_fault(evidence, ends)
        except WindowClosing as exc:
            return self._missed(job.job_id, exc.message)
        if finding is None:
            self.ledger.set_status(job.job_id, PASSED, reason="")
            self.report(f"verdict {job.job_id} passed")
            return PASSED
        if finding.reason == "overcharge":
            return await self._prove_overcharge(job, finding, evidence, ends, placed)
        return await self._dispute(job, finding, ends, placed)

    async def _settled_on_chain(self, job: LedgerJob) -> bool:
        """True if there is nothing left to do: our dispute is on-chain (a crash after
        sending it), or the job is no longer pending."""
        dispute = await asyncio.to_thread(self.chain.court.get_dispute, job.job_id)
        if dispute.phase != "None" and dispute.challenger == self.account.address:
            if self.ledger.get(job.job_id).status not in (CHALLENGED, UPHELD):
                found = await asyncio.to_thread(
                    self.events.dispute_tx, job.job_id, self.account.address, job.block
                )
                tx, block = found if found is not None else (None, None)
                self.ledger.record_challenge(job.job_id, dispute.hop, dispute.evidence, tx, block)
                self.report(f"verdict {job.job_id} challenged hop={dispute.hop} tx={tx} (found)")
            return True
        record = await asyncio.to_thread(self.chain.market.get_job, job.job_id)
        if job.batch_id is not None and record.status == "None":
            batch = await asyncio.to_thread(self.chain.batches.get_batch, job.batch_id)
            placed = await asyncio.to_thread(self.batches.place, job.job_id)
            if batch.status != "Posted" or placed is None or batch.voided >> placed.entry & 1:
                self._missed(job.job_id, "its batch entry was paid or voided before it was checked")
                return True
            return False
        if record.status != "Submitted":
            self._missed(job.job_id, f"the job was {record.status.lower()} before it was checked")
            return True
        return False

    def _evidence(self, job: LedgerJob, finding: Finding) -> str:
        evidence = Evidence(job.job_id, finding.hop, finding.reason, finding.step,
                            finding.position, finding.score, finding.detail)  # fmt: skip
        return self.ledger.record_evidence(evidence)

    async def _prove_overcharge(
        self,
        job: LedgerJob,
        finding: Finding,
        evidence: Gathered,
        ends: float,
        placed: Placed | None = None,
    ) -> str:
        """The market checks an over-charge itself, from the commitment's preimage. If it
        does not agree (its walk of the receipts is stricter than ours, say), a jury decides."""
        digest = self._evidence(job, finding)
        transcripts: list[HopTranscript] = list(evidence.fetched)  # type: ignore[arg-type]
        ordered = committed_receipts(transcripts, evidence.commitment, evidence.submitter_hop)
        preimage = commitment_preimage(ordered)
        proven = proven_positions(bytes.fromhex(job.job_id[2:]), len(evidence.route), ordered)
        if proven >= evidence.record.tokens_served:  # the market's walk would not agree
            return await self._dispute(job, finding, ends, placed)
        try:
            self.inspector.need(ends, 0.0, "an over-charge was found too late")
            if placed is None:
                tx = await asyncio.to_thread(
                    self.chain.market.prove_overcharge, self.account, job.job_id, preimage
                )
            else:
                tx = await asyncio.to_thread(
                    self.chain.batches.prove_overcharge, self.account, placed.batch_id,
                    placed.entries, placed.entry, placed.leaf, preimage,
                )  # fmt: skip
        except WindowClosing as exc:
            return self._missed(job.job_id, exc.message)
        except ContractRevert as exc:
            if exc.code in ("ChallengeWindowClosed", "JobNotPending", "WindowClosed"):
                return self._missed(job.job_id, f"the over-charge proof reverted: {exc.code}")
            if exc.code in ("NoOvercharge", "ReceiptsMismatch", "ReceiptsMalformed"):
                log.warning("job %s: the market refused the over-charge proof (%s); "
                            "disputing it instead", job.job_id, exc.code)  # fmt: skip
                return await self._dispute(job, finding, ends, placed)
            raise
        self.ledger.record_challenge(job.job_id, finding.hop, digest, tx.tx_hash, tx.block)
        self.ledger.set_status(job.job_id, UPHELD, reason=finding.reason)
        self.report(
            f"verdict {job.job_id} overcharge hop={finding.hop} proven tx={tx.tx_hash} "
            f"({finding.detail})"
        )
        return UPHELD

    async def _dispute(
        self, job: LedgerJob, finding: Finding, ends: float, placed: Placed | None = None
    ) -> str:
        digest = self._evidence(job, finding)
        try:
            self.inspector.need(ends, 0.0, f"hop {finding.hop} failed ({finding.reason}) too late")
        except WindowClosing as exc:
            return self._missed(job.job_id, exc.message)
        # The dispute may have landed before a crash; never send a second transaction.
        if await self._settled_on_chain(job):
            return self.ledger.get(job.job_id).status
        jurors = await asyncio.to_thread(
            self.chain.court.eligible_jurors, job.job_id, self.account.address
        )
        if jurors < self.quorum:
            return self._missed(
                job.job_id,
                f"hop {finding.hop} failed ({finding.reason}), but only {jurors} verifiers "
                f"could sit on its jury and a verdict needs {self.quorum}",
            )
        kind = WITHHOLDING if finding.reason in _WITHHELD else FAULT
        evidence = bytes.fromhex(digest[2:])
        try:
            if placed is None:
                tx = await asyncio.to_thread(
                    self.chain.court.open_dispute, self.account, job.job_id, finding.hop, kind,
                    evidence, self.bond, self.chain.token,
                )  # fmt: skip
            else:
                tx = await asyncio.to_thread(
                    self.chain.court.open_batched_dispute, self.account,
                    entry_ref(placed.batch_id, placed.entries, placed.entry),
                    placed.job.as_tuple(), placed.entries[placed.entry].proof(placed.leaf),
                    finding.hop, kind, evidence, self.bond, self.chain.token,
                )  # fmt: skip
        except ContractRevert as exc:
            settled = ("AlreadyDisputed", "JobNotPending", "AlreadyRecorded")
            if exc.code in settled and await self._settled_on_chain(job):
                return self.ledger.get(job.job_id).status
            if exc.code in (*settled, "ChallengeWindowClosed", "WindowClosed", "EntryNotLive"):
                return self._missed(job.job_id, f"the dispute reverted: {exc.code}")
            raise
        if self.fault is not None:
            self.fault("after_challenge")
        self.ledger.record_challenge(job.job_id, finding.hop, digest, tx.tx_hash, tx.block)
        self.ledger.set_status(job.job_id, CHALLENGED, reason=finding.reason)
        self.report(
            f"verdict {job.job_id} challenged hop={finding.hop} reason={finding.reason} "
            f"tx={tx.tx_hash}"
        )
        return CHALLENGED

    def _missed(self, job_id: str, reason: str) -> str:
        log.warning("job %s missed: %s", job_id, reason)
        self.ledger.set_status(job_id, MISSED, reason=reason)
        self.report(f"verdict {job_id} missed reason={reason!r}")
        return MISSED
