"""Getting paid: submit served jobs, finalize them after the challenge window, record payouts.

The ledger is written first and the chain is asked before every transaction, so the node
can die at any point and, once restarted, neither submits a job twice nor forgets one:

- served, not yet sent    → ledger ``served``, chain ``None``      → submit once;
- sent, not yet recorded  → ledger ``served``, chain ``Submitted`` → just record it;
- recorded                → ledger ``submitted``                   → wait, then finalize.

Only the route's last hop submits (it holds every hop's receipts), or, if it died mid-answer,
the survivor the client handed the receipts to (``handoff``); any hop may finalize,
and every hop follows its jobs to record what it was paid, then deletes the transcripts of
jobs that can no longer be challenged (``transcript_pruning``).

With a batch policy, jobs that can go into a batch are posted many per transaction instead
(``batch_settlement``); every hop follows the batches that credit it either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from eth_account.signers.local import LocalAccount

from sharedllm.chain.connection import Chain
from sharedllm.chain.transact import rpc
from sharedllm.errors import ContractRevert, SharedLLMError
from sharedllm.node.batch_settlement import BatchFollower, BatchPolicy, BatchPoster
from sharedllm.node.ledger import CHALLENGED, FINALIZED, REFUSED, SERVED, SUBMITTED, Ledger
from sharedllm.node.transcript_pruning import prune
from sharedllm.node.transcripts import TranscriptStore
from sharedllm.protocol.amendment import parse_amendments
from sharedllm.protocol.job import Job

log = logging.getLogger(__name__)

_FINALIZE_GAS = 60_000  # per hop, plus one for the job itself; measured ~40k per hop


class Settler:
    def __init__(
        self,
        chain: Chain,
        account: LocalAccount,
        ledger: Ledger,
        *,
        submit_delay: float = 0.0,
        transcripts: TranscriptStore | None = None,
        after_submit: Callable[[str], None] | None = None,
        claim: Callable[[int, dict], int] | None = None,
        batching: BatchPolicy | None = None,
    ) -> None:
        """``after_submit`` and ``claim`` are a test's faults (``sharedllm.testing``): a
        crash right after a submission is mined, and the tokens a dishonest node would claim
        for a job (given the tokens it served and the job)."""
        self.chain = chain
        self.account = account
        self.ledger = ledger
        self.transcripts = transcripts
        self.after_submit = after_submit
        self.claim = claim
        self.window = int(chain.market.params()["challengeWindow"])
        self.submit_delay = submit_delay
        self.poster = BatchPoster(chain, account, ledger, batching, claim) if batching else None
        self.follower = BatchFollower(chain, account, ledger)
        self._wake = asyncio.Event()
        self._now: float | None = None  # this pass's time of the next block, once asked

    def poke(self) -> None:
        """Something was served: settle soon rather than at the next tick."""
        self._wake.set()

    async def run(self, interval: float = 2.0) -> None:
        while True:
            try:
                await asyncio.to_thread(self.settle_once)
            except SharedLLMError as exc:  # the chain may be down for a while; keep trying
                log.warning("settlement: %s", exc)
            except Exception:  # a bug in one pass must not stop settlement for good
                log.exception("settlement pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()

    def settle_once(self) -> None:
        self._now = None
        batchable = []
        for job in list(self.ledger.with_status(SERVED)):
            if not job.submits:
                self._follow(job.job_id)
            elif self.poster is not None and (
                job.batch_key is not None or self.poster.batchable(job, self._next_block_time())
            ):
                batchable.append(job)
            else:
                self._submit(job.job_id)
        if self.poster is not None:
            self.poster.settle(batchable, self._next_block_time())
        self.follower.follow()
        for job in list(self.ledger.with_status(SUBMITTED)):
            if job.batch_id is None or job.lifted:
                self._follow(job.job_id)
        if self.transcripts is not None:
            prune(
                self.transcripts,
                self.ledger,
                lambda job_id: self.chain.market.get_job(job_id).status,
                self.window,
            )

    def _submit(self, job_id: str) -> None:
        entry = self.ledger.get(job_id)
        assert entry is not None
        if time.time() - self.ledger.created_at(job_id) < self.submit_delay:
            return
        if self._follow(job_id):  # already on-chain: sent before a crash
            return
        job = Job.from_json(entry.job)
        tokens = entry.tokens if self.claim is None else self.claim(entry.tokens, entry.job)
        signature = bytes.fromhex(entry.signature.removeprefix("0x"))
        commitment = bytes.fromhex(entry.commitment.removeprefix("0x"))
        try:
            if entry.amendments:
                amendments = parse_amendments(entry.amendments, len(job.route))
                submitted = self.chain.market.submit_amended(
                    self.account, job, signature, amendments, tokens, commitment
                )
            else:
                submitted = self.chain.market.submit_result(
                    self.account, job, signature, tokens, commitment
                )
        except ContractRevert as exc:
            if exc.code == "JobAlreadySubmitted":
                self._follow(job_id)
                return
            log.error("job %s cannot be submitted: %s", job_id, exc)
            self.ledger.set_status(job_id, REFUSED, error=exc.code)
            return
        if self.after_submit is not None:  # a test's fault point (sharedllm.testing)
            self.after_submit(job_id)
        self.ledger.set_status(
            job_id, SUBMITTED, submit_tx=submitted.tx.tx_hash, cost=submitted.cost
        )
        log.info("submitted job %s: %d tokens, cost %d wei", job_id, tokens, submitted.cost)

    def _follow(self, job_id: str) -> bool:
        """Bring the ledger up to the chain's view of the job; True if the chain knows it."""
        record = self.chain.market.get_job(job_id)
        status = record.status
        if status == "None":
            return False
        entry = self.ledger.get(job_id)
        if status == "Submitted":
            if entry.status == SERVED:
                self.ledger.set_status(job_id, SUBMITTED, cost=record.cost)
            ends = record.submitted_at + self.window
            if entry.submits and self._next_block_time() >= ends:
                self._finalize(job_id, entry.hops + len(entry.amendments))
        elif status == "Finalized" and entry.status != FINALIZED:
            payout, reward = self._payout(job_id)
            self.ledger.set_status(job_id, FINALIZED, payout=payout, reward=reward)
        elif status == "Challenged" and entry.status != CHALLENGED:
            # An overturned job still pays the hops that were not at fault, out of the slash.
            self.ledger.set_status(job_id, CHALLENGED, payout=self._compensation(job_id))
        elif status == "Disputed" and entry.status == SERVED:
            self.ledger.set_status(job_id, SUBMITTED, cost=record.cost)
        return True

    def _next_block_time(self) -> float:
        """At least the wall clock and at least the latest block's time (a quiet devnet's
        latest block stands still; a chain's clock may run ahead); asked once per pass."""
        if self._now is None:
            self._now = max(time.time(), self.chain.now())
        return self._now

    def _finalize(self, job_id: str, hops: int) -> None:
        try:
            self.chain.market.finalize(self.account, job_id, gas=_FINALIZE_GAS * (hops + 1))
        except ContractRevert as exc:
            if exc.code not in ("JobNotPending", "ChallengeWindowOpen", "JobUnderDispute"):
                raise
            return  # not yet, disputed, or someone else did: the next pass sees the outcome
        payout, reward = self._payout(job_id)
        self.ledger.set_status(job_id, FINALIZED, payout=payout, reward=reward)
        log.info("finalized job %s: paid %d wei + reward %d wei", job_id, payout, reward)

    def _compensation(self, job_id: str) -> int:
        """What this node was paid out of the slash of an overturned job's faulty hop."""
        events = rpc(
            lambda: self.chain.market.contract.events.HopCompensated().get_logs(
                from_block=self.chain.deployment.deploy_block,
                argument_filters={"jobHash": bytes.fromhex(job_id[2:])},
            ),
            "HopCompensated logs",
        )
        return sum(e["args"]["amount"] for e in events if e["args"]["node"] == self.account.address)

    def _payout(self, job_id: str) -> tuple[int, int]:
        """What this node was paid for the job, from the market's ``HopPaid`` events."""
        events = rpc(
            lambda: self.chain.market.contract.events.HopPaid().get_logs(
                from_block=self.chain.deployment.deploy_block,
                argument_filters={"jobHash": bytes.fromhex(job_id[2:])},
            ),
            "HopPaid logs",
        )
        mine = [e["args"] for e in events if e["args"]["node"] == self.account.address]
        return sum(a["amount"] for a in mine), sum(a["reward"] for a in mine)
