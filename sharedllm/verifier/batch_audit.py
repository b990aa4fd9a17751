"""Following batches: read each posted batch from its poster, check every job in it against
the rules the contract enforces only when shown a broken one, prove what is broken, and
draw jobs from it for recomputation like any other.

The bookkeeping check is deterministic and covers every job of every batch (it costs no
model work): the entries the poster serves must hash to the batch's ``entriesHash`` (credits
and roots are rebuilt from the jobs, so a match also proves the totals), and every leaf must
be sound (``leaf_fault``) and paid nowhere else. A broken leaf is proven with
``proveBadLeaf``, a job paid twice with ``proveReplay``. A poster that will not serve its
batch, or serves other entries than it posted, is asked on chain to show them (a bond per
entry, up to ``max_demands``); an entry it does not show within the response window is
forfeited, which refunds its client.

Recomputation samples batched jobs with the same draw as jobs submitted alone, its
randomness the hash of the block after the batch's.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount

from sharedllm.chain.batch_tree import (
    BatchedJob,
    Entry,
    batch_from_json,
    leaf_fault,
)
from sharedllm.chain.connection import Chain
from sharedllm.chain.market import JobRecord
from sharedllm.errors import ContractRevert, SharedLLMError
from sharedllm.peers.batch_fetch import read_batch
from sharedllm.protocol.types import Address, JobId
from sharedllm.verifier.ledger import (
    BATCH_DEMANDED,
    BATCH_DONE,
    BATCH_NEW,
    SeenJob,
    VerifierLedger,
)
from sharedllm.verifier.selection import SelectionPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Placed:
    """A job's place in a batch, with everything a proof or a dispute about it needs."""

    batch_id: int
    entries: list[Entry]
    entry: int
    leaf: int
    posted_at: int
    poster: str

    @property
    def job(self) -> BatchedJob:
        return self.entries[self.entry].jobs[self.leaf]

    def record(self) -> JobRecord:
        """The job as the market would record it once lifted, for the inspector."""
        job = self.job
        amounts = tuple(job.amounts())
        return JobRecord(
            job_id=JobId("0x" + job.job_hash.hex()),
            status="Submitted",
            client=Address(job.job.client),
            submitter=Address(self.poster),
            submitted_at=self.posted_at,
            tokens_served=job.tokens_served,
            commitment=job.commitment,
            cost=sum(amounts),
            hops=tuple(Address(a) for a in job.job.route),
            layers=tuple(job.job.hop_layers()),
            amounts=amounts,
        )


class BatchDesk:
    def __init__(
        self,
        chain: Chain,
        account: LocalAccount,
        ledger: VerifierLedger,
        selection: SelectionPolicy,
        report: Callable[[str], None],
        block_hash: Callable[[int], bytes],
        chain_time: Callable[[], float],
        max_demands: int = 8,
    ) -> None:
        self.chain = chain
        self.account = account
        self.ledger = ledger
        self.selection = selection
        self.report = report
        self.block_hash = block_hash
        self.chain_time = chain_time
        self.max_demands = max_demands
        params = chain.market.params()
        self.window = int(params["challengeWindow"])
        self.reward_per_token = int(params["rewardPerToken"])
        self._entries: dict[int, list[Entry]] = {}

    def note_submitted(self, job_ids: list[str]) -> None:
        """Jobs just submitted on their own: any that a batch already holds is paid twice
        (kept in the ledger until proven, so a restart does not forget one)."""
        self.ledger.note_resubmitted(j for j in job_ids if self.ledger.where_batched(j) is not None)

    async def work(self) -> None:
        for row in self.ledger.batches(BATCH_NEW):
            await self._audit(row)
        for row in self.ledger.batches(BATCH_DEMANDED):
            await asyncio.to_thread(self._forfeit_due, row)
        for job_id in self.ledger.resubmitted():
            await asyncio.to_thread(self._undo_resubmission, job_id)

    def _undo_resubmission(self, job_id: str) -> None:
        """Undo whichever copy came second: the job record if it was submitted after the
        batch, else (the same second, or earlier) the batch's entry."""
        where = self.place(job_id)
        try:
            if where is None:
                pass
            elif self._paid_elsewhere(job_id, where) == "later":
                self._undo_resubmission_of(where, job_id)
            else:
                self.chain.batches.prove_replay(
                    self.account, None, (where.batch_id, where.entries, where.entry, where.leaf)
                )
                self.report(f"batch {where.batch_id} entry {where.entry} voided reason=Replayed")
        except ContractRevert as exc:
            log.warning("job %s: resubmission proof refused: %s", job_id, exc)
        self.ledger.resubmission_handled(job_id)

    # -- reading and checking ----------------------------------------------------------

    async def _audit(self, row: dict[str, Any]) -> None:
        batch_id = int(row["batch_id"])
        record = await asyncio.to_thread(self.chain.batches.get_batch, batch_id)
        if self.chain_time() >= record.posted_at + self.window:
            self.ledger.set_batch(batch_id, BATCH_DONE, reason="its window closed unread")
            return
        try:
            entries, body = await read_batch(self.chain, batch_id)
        except SharedLLMError as exc:
            await asyncio.to_thread(self._demand, batch_id, record.entries, str(exc))
            return
        placed, drawn = [], []
        random = self.block_hash(int(row["block"]) + 1)
        for e, entry in enumerate(entries):
            if record.voided >> e & 1 or record.unfunded >> e & 1:
                continue
            for k, job in enumerate(entry.jobs):
                job_id = "0x" + job.job_hash.hex()
                where = Placed(batch_id, entries, e, k, record.posted_at, record.poster)
                if await asyncio.to_thread(self._prove_if_broken, where, job_id):
                    break  # the entry is void: its other jobs are refunded, nothing to draw
                placed.append((job_id, e, k))
                draw = self.selection.draw(random, job_id, self.account.address)
                drawn.append(
                    SeenJob(job_id, int(row["block"]), record.poster,
                            "0x" + job.commitment.hex(), draw.hex, draw.selected, batch_id)
                )  # fmt: skip
        self._entries[batch_id] = entries
        self.ledger.record_batch_jobs(batch_id, json.dumps(body), placed, drawn)
        selected = sum(1 for d in drawn if d.selected)
        self.report(f"batch {batch_id} audited jobs={len(placed)} selected={selected}")

    def _prove_if_broken(self, where: Placed, job_id: str) -> bool:
        """Prove the job's leaf broken or paid twice; True if its entry is now void."""
        client = where.entries[where.entry].client
        fault = leaf_fault(where.job, client, where.poster, where.posted_at)
        try:
            if fault != "None":
                self.chain.batches.prove_bad_leaf(
                    self.account, where.batch_id, where.entries, where.entry, where.leaf
                )
                self.report(f"batch {where.batch_id} entry {where.entry} voided reason={fault}")
                return True
            first = self._paid_elsewhere(job_id, where)
            if first == "later":
                self._undo_resubmission_of(where, job_id)
            elif first is not False:
                self.chain.batches.prove_replay(
                    self.account, first, (where.batch_id, where.entries, where.entry, where.leaf)
                )
                self.report(f"batch {where.batch_id} entry {where.entry} voided reason=Replayed")
                return True
        except ContractRevert as exc:
            log.warning("batch %d entry %d: proof refused: %s", where.batch_id, where.entry, exc)
        return False

    def _paid_elsewhere(self, job_id: str, where: Placed) -> Any:
        """Where else the job is paid: (batch, entries, entry, leaf) of an earlier leaf, None
        for a job submitted on its own before this batch, ``"later"`` for one submitted on
        its own after it, False if nowhere."""
        earlier = self.ledger.where_batched(job_id)
        if earlier is not None and earlier != (where.batch_id, where.entry, where.leaf):
            entries = self.entries_of(earlier[0])
            if entries is not None:
                return (earlier[0], entries, earlier[1], earlier[2])
        record = self.chain.market.get_job(job_id)
        if record.status != "None":
            return None if record.submitted_at <= where.posted_at else "later"
        return False

    def _undo_resubmission_of(self, where: Placed, job_id: str) -> None:
        self.chain.batches.prove_resubmitted(
            self.account, where.batch_id, where.entries, where.entry, where.leaf
        )
        self.report(f"batch {where.batch_id} job {job_id} resubmitted: overturned")

    def entries_of(self, batch_id: int) -> list[Entry] | None:
        if batch_id not in self._entries:
            row = self.ledger.batch(batch_id)
            if row is None or row["body"] is None:
                return None
            self._entries[batch_id] = batch_from_json(
                json.loads(row["body"]), self.chain.chain_id, self.chain.market.address,
                self.reward_per_token,
            )  # fmt: skip
        return self._entries[batch_id]

    def place(self, job_id: str) -> Placed | None:
        where = self.ledger.where_batched(job_id)
        if where is None:
            return None
        entries = self.entries_of(where[0])
        if entries is None:
            return None
        record = self.chain.batches.get_batch(where[0])
        return Placed(where[0], entries, where[1], where[2], record.posted_at, record.poster)

    # -- a poster that does not show its batch -----------------------------------------

    def _demand(self, batch_id: int, entries: int, why: str) -> None:
        self.report(f"batch {batch_id} unreadable from its poster ({why}): demanding entries")
        demanded = 0
        for index in range(min(entries, self.max_demands)):
            try:
                self.chain.batches.demand(self.account, batch_id, index, self.chain.token)
                demanded += 1
            except ContractRevert as exc:
                log.warning("batch %d entry %d: demand refused: %s", batch_id, index, exc)
        self.ledger.set_batch(batch_id, BATCH_DEMANDED if demanded else BATCH_DONE, reason=why)

    def _forfeit_due(self, row: dict[str, Any]) -> None:
        """Forfeit every entry we demanded that its poster did not show in time; the
        entries' hashes come from the chain, their credits from ``postBatch``'s calldata."""
        batch_id = int(row["batch_id"])
        record = self.chain.batches.get_batch(batch_id)
        if record.status != "Posted" or not record.demanded:
            self.ledger.set_batch(batch_id, BATCH_DONE)
            return
        now = self.chain_time()
        posted = None
        for index in range(record.entries):
            if not record.demanded >> index & 1:
                continue
            demand = self.chain.batches.demand_of(batch_id, index)
            if demand.demander.lower() != self.account.address.lower():
                continue
            if now <= demand.due_at:
                return
            posted = posted or self.chain.batches.posted_entries(batch_id)
            try:
                self.chain.batches.forfeit_posted(self.account, batch_id, posted, index)
                self.report(f"batch {batch_id} entry {index} voided reason=Withheld")
            except ContractRevert as exc:
                log.warning("batch %d entry %d: forfeit refused: %s", batch_id, index, exc)
