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
from sharedllm.protocol.types import Address, JobId

JOB_STATUS = ("None", "Submitted", "Finalized", "Challenged", "Disputed")


@dataclass(frozen=True)
class PendingWithdrawal:
    amount: int
    ready_at: int


@dataclass(frozen=True)
class JobRecord:
    """The market's record of a job, field for field ``IJobMarket.JobRecord``: who paid and
    who submitted, when, how many tokens were served, their commitment and cost, the route
    (an amended job's replacements after its hops) with each hop's layer count and payout,
    and when the payouts were released. A job the market has no record of has status
    ``"None"`` and zero fields."""

    job_id: JobId
    status: str
    client: Address
    submitter: Address
    submitted_at: int
    tokens_served: int
    commitment: bytes
    cost: int
    hops: tuple[Address, ...]
    layers: tuple[int, ...]
    amounts: tuple[int, ...] = ()
    released_at: int = 0

    @classmethod
    def from_chain(cls, job_id: JobId, raw: Any) -> JobRecord:
        """From ``getJob``'s struct (a named tuple, in the contract's field order)."""
        return cls(
            job_id=job_id,
            status=JOB_STATUS[int(raw.status)],
            client=Address(raw.client),
            submitter=Address(raw.submitter),
            submitted_at=int(raw.submittedAt),
            tokens_served=int(raw.tokensServed),
            commitment=bytes(raw.commitment),
            cost=int(raw.cost),
            hops=tuple(Address(a) for a in raw.hops),
            layers=tuple(int(n) for n in raw.layers),
            amounts=tuple(int(a) for a in raw.amounts),
            released_at=int(raw.releasedAt),
        )


@dataclass(frozen=True)
class ResultSubmitted:
    """A ``ResultSubmitted`` event, with the block that carried it."""

    job_id: JobId
    client: Address
    submitter: Address
    tokens_served: int
    commitment: bytes
    cost: int
    block: int


@dataclass(frozen=True)
class Amended:
    """A ``JobAmended`` event: from ``from_position`` on, ``replacement`` served route hop
    ``hop`` of the job; it is the job's record hop ``index``."""

    hop: int
    replacement: Address
    from_position: int
    index: int


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

    def submitted_jobs(self, from_block: int = 0) -> list[ResultSubmitted]:
        """``ResultSubmitted`` events since ``from_block``, oldest first."""
        logs = rpc(
            lambda: self.contract.events.ResultSubmitted().get_logs(from_block=from_block),
            "ResultSubmitted logs",
        )
        return [
            ResultSubmitted(
                JobId("0x" + bytes(log["args"]["jobHash"]).hex()),
                Address(log["args"]["client"]),
                Address(log["args"]["submitter"]),
                int(log["args"]["tokensServed"]),
                bytes(log["args"]["commitment"]),
                int(log["args"]["cost"]),
                int(log["blockNumber"]),
            )
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

    def amendments_of(self, job_id: str, from_block: int = 0) -> list[Amended]:
        """The job's ``JobAmended`` events, oldest first."""
        job_hash = bytes.fromhex(job_id[2:])
        logs = rpc(
            lambda: self.contract.events.JobAmended().get_logs(
                from_block=from_block, argument_filters={"jobHash": job_hash}
            ),
            "JobAmended logs",
        )
        return [
            Amended(
                int(log["args"]["hop"]),
                Address(log["args"]["replacement"]),
                int(log["args"]["fromPosition"]),
                int(log["args"]["index"]),
            )
            for log in logs
        ]

    def get_job(self, job_id: str) -> JobRecord:
        raw = call(self.contract.functions.getJob(bytes.fromhex(job_id[2:])), "getJob")
        return JobRecord.from_chain(JobId(job_id), raw)

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
