"""The JobMarket: client escrow, job settlement, over-charge proofs and the reward pool."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.logs import DISCARD

from sharedllm.chain.token import Token
from sharedllm.chain.transact import TxResult, call, call_as, rpc, send
from sharedllm.errors import ChainError
from sharedllm.protocol.amendment import Amendment
from sharedllm.protocol.job import Job
from sharedllm.protocol.types import JobId

JOB_STATUS = ("None", "Submitted", "Finalized", "Challenged", "Disputed")


@dataclass(frozen=True)
class PendingWithdrawal:
    amount: int
    ready_at: int


@dataclass(frozen=True)
class JobRecord:
    """The on-chain record of a submitted job; field names follow the contract's struct."""

    job_id: JobId
    status: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class Submitted:
    job_id: JobId
    cost: int
    tx: TxResult


class Market:
    def __init__(self, w3: Web3, contract: Any) -> None:
        self.w3 = w3
        self.contract = contract
        self.address: str = contract.address

    # -- views -------------------------------------------------------------------------

    def escrow_of(self, client: str) -> int:
        return call_as(int, self.contract.functions.escrowOf(client), "escrowOf")

    def pending_withdrawal(self, client: str) -> PendingWithdrawal:
        amount, ready_at = call(
            self.contract.functions.pendingWithdrawal(client), "pendingWithdrawal"
        )
        return PendingWithdrawal(amount, ready_at)

    def reward_pool(self) -> int:
        return call_as(int, self.contract.functions.rewardPool(), "rewardPool")

    def params(self) -> dict[str, int]:
        """The market's parameters as deployed, by their Solidity field names."""
        return dict(call(self.contract.functions.params(), "params")._asdict())

    def submitted_jobs(self, from_block: int = 0) -> list[dict[str, Any]]:
        """``ResultSubmitted`` events since ``from_block``, oldest first, as plain dicts."""
        logs = rpc(
            lambda: self.contract.events.ResultSubmitted().get_logs(from_block=from_block),
            "ResultSubmitted logs",
        )
        return [
            {**{k: _plain(v) for k, v in log["args"].items()}, "block": log["blockNumber"]}
            for log in logs
        ]

    def total_escrow(self) -> int:
        return call_as(int, self.contract.functions.totalEscrow(), "totalEscrow")

    def total_locked(self) -> int:
        return call_as(int, self.contract.functions.totalLocked(), "totalLocked")

    def total_batched(self) -> int:
        return call_as(int, self.contract.functions.totalBatched(), "totalBatched")

    def proven_positions(self, job_id: str, hops: int, receipts: bytes) -> tuple[int, bytes]:
        """What the contract finds ``receipts`` prove for the job, and their commitment."""
        fn = self.contract.functions.provenPositions(bytes.fromhex(job_id[2:]), hops, receipts)
        proven, commitment = call(fn, "provenPositions")
        return int(proven), bytes(commitment)

    def hash_job(self, job: Job) -> bytes:
        return bytes(call(self.contract.functions.hashJob(job.as_tuple()), "hashJob"))

    def hash_amendment(self, job_id: str, amendment: Amendment) -> bytes:
        job_hash = bytes.fromhex(job_id[2:])
        fn = self.contract.functions.hashAmendment(job_hash, amendment.as_tuple())
        return bytes(call(fn, "hashAmendment"))

    def replacements_of(self, job_id: str) -> int:
        """How many of an amended job's record hops are replacements (0 for a plain job)."""
        fn = self.contract.functions.replacementsOf(bytes.fromhex(job_id[2:]))
        return call_as(int, fn, "replacementsOf")

    def amendments_of(self, job_id: str, from_block: int = 0) -> list[dict[str, Any]]:
        """The job's ``JobAmended`` events: hop, replacement, fromPosition, record index."""
        job_hash = bytes.fromhex(job_id[2:])
        logs = rpc(
            lambda: self.contract.events.JobAmended().get_logs(
                from_block=from_block, argument_filters={"jobHash": job_hash}
            ),
            "JobAmended logs",
        )
        return [{k: _plain(v) for k, v in log["args"].items()} for log in logs]

    def get_job(self, job_id: str) -> JobRecord:
        raw = call(self.contract.functions.getJob(bytes.fromhex(job_id[2:])), "getJob")
        fields = {k: _plain(v) for k, v in raw._asdict().items()}
        status = fields.get("status", 0)
        return JobRecord(JobId(job_id), JOB_STATUS[status], fields)

    # -- escrow ------------------------------------------------------------------------

    def deposit(self, account: LocalAccount, amount: int, token: Token) -> TxResult:
        token.prepare_spend(account, self.address, amount, "deposit")
        fn = self.contract.functions.deposit(amount)
        return TxResult.of(send(self.w3, account, fn, "deposit"))

    def request_withdrawal(self, account: LocalAccount, amount: int) -> TxResult:
        fn = self.contract.functions.requestWithdrawal(amount)
        return TxResult.of(send(self.w3, account, fn, "requestWithdrawal"))

    def withdraw(self, account: LocalAccount) -> TxResult:
        fn = self.contract.functions.withdraw()
        return TxResult.of(send(self.w3, account, fn, "withdraw"))

    # -- jobs --------------------------------------------------------------------------

    def submit_result(
        self,
        account: LocalAccount,
        job: Job,
        signature: bytes,
        tokens_served: int,
        commitment: bytes,
    ) -> Submitted:
        fn = self.contract.functions.submitResult(
            job.as_tuple(), signature, tokens_served, commitment
        )
        receipt = send(self.w3, account, fn, "submitResult")
        events = self.contract.events.ResultSubmitted().process_receipt(receipt)
        if not events:
            raise ChainError("submitResult: no ResultSubmitted event in the receipt")
        args = events[0]["args"]
        return Submitted(
            JobId("0x" + bytes(args["jobHash"]).hex()), args["cost"], TxResult.of(receipt)
        )

    def submit_amended(
        self,
        account: LocalAccount,
        job: Job,
        signature: bytes,
        amendments: tuple[Amendment, ...],
        tokens_served: int,
        commitment: bytes,
    ) -> Submitted:
        """``submit_result`` for a job whose client replaced hops mid-answer."""
        fn = self.contract.functions.submitAmended(
            job.as_tuple(),
            signature,
            [a.as_tuple() for a in amendments],
            [a.signature for a in amendments],
            tokens_served,
            commitment,
        )
        receipt = send(self.w3, account, fn, "submitAmended")
        events = self.contract.events.ResultSubmitted().process_receipt(receipt, errors=DISCARD)
        if not events:
            raise ChainError("submitAmended: no ResultSubmitted event in the receipt")
        args = events[0]["args"]
        return Submitted(
            JobId("0x" + bytes(args["jobHash"]).hex()), args["cost"], TxResult.of(receipt)
        )

    def finalize(self, account: LocalAccount, job_id: str, gas: int | None = None) -> TxResult:
        fn = self.contract.functions.finalize(bytes.fromhex(job_id[2:]))
        return TxResult.of(send(self.w3, account, fn, "finalize", gas=gas))

    def prove_overcharge(self, account: LocalAccount, job_id: str, receipts: bytes) -> TxResult:
        """Overturn a job whose committed receipts prove fewer positions than it charged."""
        fn = self.contract.functions.proveOvercharge(bytes.fromhex(job_id[2:]), receipts)
        return TxResult.of(send(self.w3, account, fn, "proveOvercharge"))

    # -- rewards -----------------------------------------------------------------------

    def fund_rewards(self, account: LocalAccount, amount: int, token: Token) -> TxResult:
        token.prepare_spend(account, self.address, amount, "fundRewards")
        fn = self.contract.functions.fundRewards(amount)
        return TxResult.of(send(self.w3, account, fn, "fundRewards"))


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
