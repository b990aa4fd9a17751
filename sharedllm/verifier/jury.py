"""Sitting on juries, and moving every dispute along.

A verifier drawn as a juror (a ``JurorDrawn`` event naming it) judges the accused hop on its
own: it fetches the transcripts, checks the hop's receipts and the job's bookkeeping where
they name this hop, and recomputes the hop's span. It keeps the vote and a fresh salt in its
ledger, commits ``keccak(job, round, juror, vote, salt)``, and reveals once every juror has
committed or the commit window is over.

An accused hop whose transcript cannot be fetched may be restarting: the juror asks again on
every pass until the court's response window (counted from the draw) is over, and only then
votes that the hop withheld it.

Every verifier also drives the disputes it has seen, whoever opened them: it draws the jury
once the draw block is mined and resolves the round once it can be resolved. Each step is
callable by anyone, so a dispute ends even if its challenger has gone.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable

from eth_account.signers.local import LocalAccount

from sharedllm.chain.connection import Chain
from sharedllm.chain.court import Dispute, vote_commitment
from sharedllm.errors import ContractRevert, WindowClosing
from sharedllm.verifier.inspection import Inspector
from sharedllm.verifier.ledger import (
    CLOSED,
    COMMITTED,
    DRAWN,
    JUDGED,
    LAPSED,
    REJECTED,
    REVEALED,
    UPHELD,
    Case,
    VerifierLedger,
)

log = logging.getLogger(__name__)

# Reverts that mean someone else moved the dispute first: look again next pass.
_RACED = ("WrongPhase", "DrawNotReady", "NotResolvable", "NoDispute")


class JuryDesk:
    def __init__(
        self,
        chain: Chain,
        account: LocalAccount,
        ledger: VerifierLedger,
        inspector: Inspector,
        report: Callable[[str], None],
        fault: Callable[[str], None] | None = None,
    ) -> None:
        """``fault`` is a test's fault point (``sharedllm.testing.faulty_verifier``): called
        with ``before_reveal`` it may raise to make this juror never reveal."""
        self.chain = chain
        self.account = account
        self.ledger = ledger
        self.inspector = inspector
        self.report = report
        self.fault = fault
        params = chain.court.params()
        self.response_window = int(params["responseWindow"])
        self.commit_window = int(params["commitWindow"])

    async def work(self) -> None:
        """One pass: move every open dispute along, then act on every open jury case."""
        for row in self.ledger.open_disputes():
            await self._drive(row["job_id"], row["challenger"])
        for case in self.ledger.open_cases():
            try:
                await self._act(case)
            except WindowClosing as exc:
                self._lapse(case, exc.message)

    # -- any dispute -----------------------------------------------------------------------

    async def _drive(self, job_id: str, challenger: str) -> None:
        dispute = await asyncio.to_thread(self.chain.court.get_dispute, job_id)
        if dispute.phase in ("Upheld", "Rejected"):
            outcome = UPHELD if dispute.phase == "Upheld" else REJECTED
            self.ledger.end_dispute(job_id, outcome)
            if challenger == self.account.address:
                self.report(
                    f"dispute {job_id} {outcome} hop={dispute.hop} "
                    f"votes={dispute.uphold_votes}/{dispute.revealed}"
                )
            return
        if dispute.phase == "Drawing":
            head = await asyncio.to_thread(self.inspector.events.head)
            if head > dispute.draw_block:
                await self._send(job_id, "drawJury", self.chain.court.draw_jury)
        elif dispute.phase == "Voting" and self._resolvable(dispute):
            await self._send(job_id, "resolve", self.chain.court.resolve)

    def _resolvable(self, d: Dispute) -> bool:
        everyone = len(d.jurors) > 0 and d.revealed == len(d.jurors)
        return not d.jurors or everyone or self.inspector.events.chain_time() >= d.reveal_ends_at

    async def _send(self, job_id: str, what: str, call) -> None:
        try:
            await asyncio.to_thread(call, self.account, job_id)
        except ContractRevert as exc:
            if exc.code not in _RACED:
                raise
            log.debug("%s %s: %s", what, job_id, exc.code)

    # -- our cases -------------------------------------------------------------------------

    async def _act(self, case: Case) -> None:
        dispute = await asyncio.to_thread(self.chain.court.get_dispute, case.job_id)
        if dispute.phase != "Voting" or dispute.round != case.round:
            self._close(case, dispute)
            return
        if case.status == DRAWN:
            if not await self._judge(case, dispute):
                return
            case = self.ledger.case(case.job_id, case.round)
        if case.status == JUDGED:
            await self._commit(case)
            case = self.ledger.case(case.job_id, case.round)
            dispute = await asyncio.to_thread(self.chain.court.get_dispute, case.job_id)
        if case.status == COMMITTED and self._reveal_open(dispute):
            await self._reveal(case)

    async def _judge(self, case: Case, dispute: Dispute) -> bool:
        """Decide the vote and keep it with its salt; False to look again next pass (the
        accused hop is unavailable and its response window is still open)."""
        ends = float(case.commit_ends_at)
        record = await asyncio.to_thread(self.chain.market.get_job, case.job_id)
        evidence = await self.inspector.gather(case.job_id, record, ends)
        accused = dispute.hop
        if evidence.unavailable_record(accused) is not None:
            drawn_at = case.commit_ends_at - self.commit_window
            if self.inspector.events.chain_time() < drawn_at + self.response_window:
                log.info("job %s: hop %d unavailable, inside its response window: %s",
                         case.job_id, accused, evidence.unavailable_record(accused))  # fmt: skip
                return False
        finding = await self.inspector.judge_hop(evidence, accused, ends)
        uphold = finding is not None
        reason = finding.reason if finding is not None else "checks_out"
        detail = finding.detail if finding is not None else ""
        self.ledger.record_vote(case.job_id, case.round, uphold, secrets.token_bytes(32),
                                reason, detail)  # fmt: skip
        log.info("job %s round %d: vote %s (%s)", case.job_id, case.round,
                 "uphold" if uphold else "reject", reason)  # fmt: skip
        return True

    def _commitment(self, case: Case) -> bytes:
        assert case.uphold is not None and case.salt is not None
        salt = bytes.fromhex(case.salt[2:])
        return vote_commitment(case.job_id, case.round, self.account.address, case.uphold, salt)

    async def _commit(self, case: Case) -> None:
        commitment = self._commitment(case)
        ballot = await asyncio.to_thread(
            self.chain.court.get_ballot, case.job_id, self.account.address
        )
        if ballot.commitment == commitment:  # sent before a crash
            self.ledger.set_case(case.job_id, case.round, COMMITTED)
            return
        try:
            tx = await asyncio.to_thread(
                self.chain.court.commit_vote, self.account, case.job_id, commitment
            )
        except ContractRevert as exc:
            if exc.code == "CommitClosed":
                self._lapse(case, "the commit window closed before the vote was sent")
                return
            raise
        self.ledger.set_case(case.job_id, case.round, COMMITTED, commit_tx=tx.tx_hash)

    def _reveal_open(self, d: Dispute) -> bool:
        everyone = d.committed == len(d.jurors)
        return everyone or self.inspector.events.chain_time() >= d.commit_ends_at

    async def _reveal(self, case: Case) -> None:
        if self.fault is not None:
            self.fault("before_reveal")
        assert case.uphold is not None and case.salt is not None
        ballot = await asyncio.to_thread(
            self.chain.court.get_ballot, case.job_id, self.account.address
        )
        if ballot.revealed:
            self.ledger.set_case(case.job_id, case.round, REVEALED)
            return
        try:
            tx = await asyncio.to_thread(
                self.chain.court.reveal_vote,
                self.account, case.job_id, case.uphold, bytes.fromhex(case.salt[2:]),
            )  # fmt: skip
        except ContractRevert as exc:
            if exc.code == "RevealNotOpen":
                return
            if exc.code == "RevealClosed":
                self._lapse(case, "the reveal window closed before the vote was revealed")
                return
            raise
        self.ledger.set_case(case.job_id, case.round, REVEALED, reveal_tx=tx.tx_hash)
        self.report(
            f"juror {case.job_id} round={case.round} "
            f"vote={'uphold' if case.uphold else 'reject'} reason={case.reason}"
        )

    def _close(self, case: Case, dispute: Dispute) -> None:
        outcome = dispute.phase.lower() if dispute.round == case.round else "round_failed"
        self.ledger.set_case(case.job_id, case.round, CLOSED, outcome=outcome)

    def _lapse(self, case: Case, reason: str) -> None:
        log.warning("jury case %s round %d lapsed: %s", case.job_id, case.round, reason)
        self.ledger.set_case(case.job_id, case.round, LAPSED, reason=reason)
        self.report(f"juror {case.job_id} round={case.round} lapsed reason={reason!r}")
