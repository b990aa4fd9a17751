"""Getting paid in batches: many served jobs posted in one transaction, paid in another.

A node that posts (the route's last hop, or the hop a dead last hop's receipts were handed
to) gathers its served jobs and posts a batch when it holds ``size`` answers, when the
oldest has waited ``age`` seconds, or when a job's deadline comes within ``margin``. Every
step is written before it is sent, and the chain is asked before anything is sent again:

- gathered, not yet sent   → batch ``posting``, no ``BatchPosted`` of ours with its hash
                              → post it (once no transaction of ours is still pending);
- sent, not yet recorded   → batch ``posting``, the chain has it → just record it;
- recorded                 → batch ``posted`` → show any entry someone demands, and pay
                              it once its window is over (anyone may; the first one does).

A job whose client signs with a contract wallet or a high-``s`` signature, or that is
already too close to its deadline, goes through ``submitResult`` on its own instead: a batch
counts only signatures that can never turn invalid.

A hop that does not post learns where its jobs went from the ``BatchPosted`` events that
credit it, reading each batch's jobs from its poster (``GET /batches/{id}``) and checking
them against the hash on chain.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from sharedllm.chain.batch_tree import (
    MAX_ENTRIES,
    MAX_ENTRY_JOBS,
    BatchedJob,
    Entry,
    Payout,
    batch_from_json,
    batch_to_json,
    batchable_signature,
    build_batch,
    entries_hash,
)
from sharedllm.chain.batches import BatchRecord
from sharedllm.chain.connection import Chain
from sharedllm.chain.registry import NodeInfo, Terms
from sharedllm.chain.terms_lock import hop_price
from sharedllm.chain.transact import rpc
from sharedllm.errors import ConfigError, ContractRevert, JobRejected, SharedLLMError
from sharedllm.node.ledger import (
    BATCH_FINALIZED,
    BATCH_POSTED,
    BATCH_POSTING,
    CHALLENGED,
    FINALIZED,
    REFUSED,
    SERVED,
    SUBMITTED,
    Ledger,
    LedgerJob,
)
from sharedllm.peers.batch_fetch import read_batch_now
from sharedllm.protocol.job import Job
from sharedllm.protocol.types import Address

log = logging.getLogger(__name__)

_FINALIZE_GAS = 80_000  # plus this per node paid; measured ~107k for three nodes
_FINALIZE_GAS_PER_NODE = 25_000
_SCAN_RANGE = 2_000  # blocks per get_logs call


@dataclass(frozen=True)
class BatchPolicy:
    """When to post: at ``size`` answers, once the oldest waited ``age`` seconds, or when a
    job's deadline is within ``margin`` seconds."""

    size: int = 256
    age: float = 300.0
    margin: float = 60.0

    def __post_init__(self) -> None:
        if not 1 <= self.size <= MAX_ENTRIES * MAX_ENTRY_JOBS:
            limit = MAX_ENTRIES * MAX_ENTRY_JOBS
            raise ConfigError(f"--batch-size: must be 1..{limit}", field="batch_size")
        if self.age < 0 or self.margin < 0:
            raise ConfigError("--batch-age: must not be negative", field="batch_age")


class BatchPoster:
    def __init__(
        self,
        chain: Chain,
        account: LocalAccount,
        ledger: Ledger,
        policy: BatchPolicy,
        claim: Callable[[int, dict[str, Any]], int] | None = None,
    ) -> None:
        """``claim`` is a test's fault (``sharedllm.testing``): the tokens a dishonest node
        would claim for a job, given the tokens it served and the job."""
        self.chain = chain
        self.claim = claim
        self.account = account
        self.ledger = ledger
        self.policy = policy
        params = chain.market.params()
        self.window = int(params["challengeWindow"])
        self.reward_per_token = int(params["rewardPerToken"])
        self._is_wallet: dict[str, bool] = {}

    # -- choosing ----------------------------------------------------------------------

    def batchable(self, entry: LedgerJob, now: float) -> bool:
        """Whether this served job may go into a batch rather than on its own: not an
        amended job (a batch leaf names one node per hop), nor one signed in a way batches
        cannot check, nor one whose deadline is near."""
        if entry.amendments:
            return False
        signature = bytes.fromhex(entry.signature.removeprefix("0x"))
        if not batchable_signature(signature):
            return False
        if int(entry.job["deadline"]) - now < self.policy.margin:
            return False
        return not self._contract_wallet(entry.job["client"])

    def _contract_wallet(self, client: str) -> bool:
        if client not in self._is_wallet:
            code = rpc(
                lambda: self.chain.w3.eth.get_code(Web3.to_checksum_address(client)), "getCode"
            )
            self._is_wallet[client] = len(code) > 0
        return self._is_wallet[client]

    # -- one pass ----------------------------------------------------------------------

    def settle(self, candidates: list[LedgerJob], now: float) -> None:
        """Resume any batch a crash left half-posted, follow posted ones, and post a new
        one from ``candidates`` (served, batchable jobs this node submits) if it is due."""
        for row in self.ledger.batches(BATCH_POSTING):
            self._send(row, resumed=True)
        for row in self.ledger.batches(BATCH_POSTED):
            self._follow(row, now)
        fresh = [c for c in candidates if c.batch_key is None]
        if fresh and self._due(fresh, now):
            self._open(fresh[: self.policy.size])

    def _due(self, jobs: list[LedgerJob], now: float) -> bool:
        if len(jobs) >= self.policy.size:
            return True
        oldest = min(self.ledger.created_at(j.job_id) for j in jobs)
        soonest = min(int(j.job["deadline"]) for j in jobs)
        return now - oldest >= self.policy.age or soonest - now <= 2 * self.policy.margin

    def _open(self, jobs: list[LedgerJob]) -> None:
        by_client: dict[Address, list[BatchedJob]] = {}
        taken: list[str] = []
        prices = self._prices()
        for entry in jobs:
            job = Job.from_json(entry.job)
            client = job.client
            if client not in by_client and len(by_client) >= MAX_ENTRIES:
                continue  # the next batch takes it
            if len(by_client.get(client, ())) >= MAX_ENTRY_JOBS:
                continue
            try:
                hop_prices = tuple(prices(job, i) for i in range(len(job.route)))
            except JobRejected as exc:  # as the market would refuse it
                self.ledger.set_status(entry.job_id, REFUSED, error=exc.code)
                continue
            by_client.setdefault(client, []).append(
                BatchedJob(
                    job,
                    bytes.fromhex(entry.job_id[2:]),
                    bytes.fromhex(entry.signature.removeprefix("0x")),
                    0,
                    entry.tokens if self.claim is None else self.claim(entry.tokens, entry.job),
                    bytes.fromhex(entry.commitment.removeprefix("0x")),
                    hop_prices,
                )
            )
            taken.append(entry.job_id)
        if not taken:
            return
        entries = build_batch(by_client, self.reward_per_token)
        key = "0x" + entries_hash(entries).hex()
        head = int(rpc(lambda: self.chain.w3.eth.block_number, "blockNumber"))
        self.ledger.open_batch(key, json.dumps(batch_to_json(entries)), taken, head)
        log.info("batch %s: %d jobs from %d clients", key[:10], len(taken), len(entries))
        self._send(self.ledger.batch_row(key), resumed=False)

    def _prices(self) -> Callable[[Job, int], int]:
        """Each hop's price as the market would set it (``terms_lock.hop_price``): a node's
        registered terms, or those before its last change for a job sent before it."""
        cache: dict[str, tuple[NodeInfo, Terms, int]] = {}
        ttl = int(self.chain.market.params()["maxJobTtl"])

        def price(job: Job, hop: int) -> int:
            node = job.route[hop]
            if node not in cache:
                prior, changed_at = self.chain.registry.prior_terms(node)
                cache[node] = (self.chain.registry.get_node(node), prior, changed_at)
            return hop_price(job, hop, *cache[node], ttl)

        return price

    def _entries(self, row: dict[str, Any]) -> list[Entry]:
        return batch_from_json(
            json.loads(row["body"]),
            self.chain.chain_id,
            self.chain.market.address,
            self.reward_per_token,
        )

    # -- posting -----------------------------------------------------------------------

    def _send(self, row: dict[str, Any], resumed: bool) -> None:
        """Post the batch, unless (``resumed``: a crash or a failure may have come between
        sending and recording) the chain already has it."""
        key = row["batch_key"]
        entries = self._entries(row)
        found = self._already_posted(key, row.get("from_block")) if resumed else None
        if found is None:
            if self._pending_transaction():
                return  # a transaction of ours may still land: ask again next pass
            try:
                posted = self.chain.batches.post(self.account, entries)
            except ContractRevert as exc:
                log.error("batch %s refused: %s", key[:10], exc)
                self.ledger.batch_dropped(key, exc.code)
                return
            found = (posted.batch_id, posted.payout, posted.unfunded)
            log.info(
                "posted batch %d: %d entries, %d wei, %d gas",
                posted.batch_id, len(entries), posted.total, posted.tx.gas_used,
            )  # fmt: skip
        batch_id, payout, unfunded = found
        costs = {"0x" + job.job_hash.hex(): sum(job.amounts()) for e in entries for job in e.jobs}
        self.ledger.batch_posted(key, batch_id, json.dumps(_payout_json(payout)), costs)
        if unfunded:
            for i, entry in enumerate(entries):
                if unfunded >> i & 1:
                    for job in entry.jobs:
                        self.ledger.set_status(
                            "0x" + job.job_hash.hex(), REFUSED, error="InsufficientEscrow"
                        )

    def _already_posted(self, key: str, from_block: int | None) -> tuple[int, Payout, int] | None:
        start = from_block if from_block is not None else self.chain.deployment.deploy_block
        for event in self.chain.batches.posted_by(self.account.address, start):
            if "0x" + event.entries_hash.hex() == key:
                record = self.chain.batches.get_batch(event.batch_id)
                return event.batch_id, event.payout, record.unfunded
        return None

    def _pending_transaction(self) -> bool:
        w3 = self.chain.w3
        address = self.account.address
        latest = rpc(lambda: w3.eth.get_transaction_count(address, "latest"), "nonce")
        pending = rpc(lambda: w3.eth.get_transaction_count(address, "pending"), "nonce")
        return pending > latest

    # -- following ---------------------------------------------------------------------

    def _follow(self, row: dict[str, Any], now: float) -> None:
        batch_id = int(row["batch_id"])
        record = self.chain.batches.get_batch(batch_id)
        entries = self._entries(row)
        for i in range(len(entries)):
            if record.demanded >> i & 1:
                self._show(batch_id, entries, i)
        if record.lifted:
            for i, entry in enumerate(entries):
                if record.lifted >> i & 1:
                    self._note_lifted(entry)
        if record.status == "Posted":
            if record.open_demands or now < record.posted_at + self.window:
                return
            payout = _payout_from_json(json.loads(row["payout"]))
            gas = _FINALIZE_GAS + _FINALIZE_GAS_PER_NODE * len(payout.nodes)
            try:
                self.chain.batches.finalize(self.account, batch_id, payout, gas=gas)
            except ContractRevert as exc:
                if exc.code not in ("BatchNotPending", "WindowOpen", "DemandsOpen"):
                    raise
                return  # someone else paid it, or not yet: the next pass sees which
            record = self.chain.batches.get_batch(batch_id)
        if record.status == "Finalized":
            record_outcome(self.chain, self.ledger, self.account.address, batch_id, entries, record)
            self.ledger.set_batch_status(row["batch_key"], BATCH_FINALIZED)

    def _show(self, batch_id: int, entries: list[Entry], index: int) -> None:
        try:
            self.chain.batches.show(self.account, batch_id, entries, index)
            log.info("showed entry %d of batch %d on demand", index, batch_id)
        except ContractRevert as exc:
            log.error("cannot show entry %d of batch %d: %s", index, batch_id, exc)

    def _note_lifted(self, entry: Entry) -> None:
        for job in entry.jobs:
            job_id = "0x" + job.job_hash.hex()
            ledger_job = self.ledger.get(job_id)
            if ledger_job is None or ledger_job.lifted:
                continue
            if self.chain.market.get_job(job_id).status != "None":
                self.ledger.mark_lifted(job_id)


def record_outcome(
    chain: Chain,
    ledger: Ledger,
    node: str,
    batch_id: int,
    entries: list[Entry],
    record: BatchRecord,
) -> None:
    """Write what a finalized batch paid this node for each of its jobs: a voided entry's
    jobs were refunded to their client, an unfunded entry's never paid; a lifted job settles
    on its own. Rewards are the batch's, shared by each job's expected reward."""
    paid, rewarded = chain.batches.paid(batch_id, node, chain.deployment.deploy_block)
    reward_per_token = int(chain.market.params()["rewardPerToken"])
    expected_reward = 0
    owed: list[tuple[str, int, int]] = []
    for i, entry in enumerate(entries):
        for job in entry.jobs:
            job_id = "0x" + job.job_hash.hex()
            ledger_job = ledger.get(job_id)
            if ledger_job is None or ledger_job.lifted or ledger_job.status != SUBMITTED:
                continue
            if record.lifted >> i & 1 and chain.market.get_job(job_id).status != "None":
                ledger.mark_lifted(job_id)  # disputed on its own: the market settles it
                continue
            if record.voided >> i & 1:
                ledger.set_status(job_id, CHALLENGED, payout=0)
                continue
            if record.unfunded >> i & 1:
                ledger.set_status(job_id, REFUSED, error="InsufficientEscrow")
                continue
            mine = [k for k, hop in enumerate(job.job.route) if hop.lower() == node.lower()]
            amount = sum(job.amounts()[k] for k in mine)
            reward = sum(job.rewards(reward_per_token)[k] for k in mine)
            expected_reward += reward
            owed.append((job_id, amount, reward))
    for job_id, amount, reward in owed:
        share = reward * rewarded // expected_reward if expected_reward else 0
        ledger.set_status(job_id, FINALIZED, payout=amount, reward=share)
    if owed:
        log.info("batch %d paid %d wei + reward %d wei", batch_id, paid, rewarded)


def _payout_json(payout: Payout) -> dict[str, list[str]]:
    return {
        "nodes": list(payout.nodes),
        "amounts": [str(a) for a in payout.amounts],
        "rewards": [str(r) for r in payout.rewards],
    }


def _payout_from_json(body: dict[str, Any]) -> Payout:
    return Payout(
        tuple(body["nodes"]),
        tuple(int(a) for a in body["amounts"]),
        tuple(int(r) for r in body["rewards"]),
    )


class BatchFollower:
    """A hop that does not post: finds the batches that credit it and which of its jobs each
    holds, from the poster's copy checked against the chain, and records their payment."""

    def __init__(self, chain: Chain, account: LocalAccount, ledger: Ledger) -> None:
        self.chain = chain
        self.address = account.address
        self.ledger = ledger
        self.reward_per_token = int(chain.market.params()["rewardPerToken"])

    def follow(self) -> None:
        self._scan()
        for key in self.ledger.cursor_keys("batch:"):
            if self.ledger.cursor(key) == 0:
                self._resolve(int(key.removeprefix("batch:")))
        batch_ids = {
            j.batch_id
            for j in self.ledger.with_status(SUBMITTED)
            if j.batch_id is not None and not j.submits and not j.lifted
        }
        for batch_id in sorted(batch_ids):
            record = self.chain.batches.get_batch(batch_id)
            if record.status == "Finalized":
                entries = self._entries(batch_id)
                if entries is not None:
                    record_outcome(self.chain, self.ledger, self.address, batch_id, entries, record)

    def _scan(self) -> None:
        """Note every newly posted batch whose payout names this node."""
        start = max(self.ledger.cursor("scan"), self.chain.deployment.deploy_block)
        latest = int(rpc(lambda: self.chain.w3.eth.block_number, "blockNumber"))
        # Bounded ranges: a public RPC refuses huge ones; the cursor moves after each.
        for first in range(start, latest + 1, _SCAN_RANGE):
            last = min(first + _SCAN_RANGE - 1, latest)
            for event in self.chain.batches.posted_since(first, last):
                if any(n.lower() == self.address.lower() for n in event.payout.nodes):
                    key = f"batch:{event.batch_id}"
                    if self.ledger.cursor(key) == 0:
                        self.ledger.set_cursor(key, 0)
            self.ledger.set_cursor("scan", last + 1)

    def _resolve(self, batch_id: int) -> None:
        entries = self._entries(batch_id)
        if entries is None:
            return  # the poster did not answer: ask again next pass
        for entry in entries:
            for job in entry.jobs:
                job_id = "0x" + job.job_hash.hex()
                mine = self.ledger.get(job_id)
                if mine is not None and mine.status == SERVED and not mine.submits:
                    self.ledger.mark_batched(job_id, batch_id, sum(job.amounts()))
        self.ledger.set_cursor(f"batch:{batch_id}", 1)

    def _entries(self, batch_id: int) -> list[Entry] | None:
        """The batch's entries as its poster serves them, if they hash to the chain's."""
        try:
            return read_batch_now(self.chain, batch_id)
        except SharedLLMError as exc:
            log.warning("batch %d: cannot read it from its poster: %s", batch_id, exc)
            return None
