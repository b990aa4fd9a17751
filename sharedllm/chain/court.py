"""The DisputeCourt: verifier stakes, challenger bonds, juries and their votes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode
from eth_account.signers.local import LocalAccount
from web3 import Web3

from sharedllm.chain.token import Token
from sharedllm.chain.transact import TxResult, call, call_as, send

PHASES = ("None", "Drawing", "Voting", "Upheld", "Rejected")
KINDS = ("Fault", "Withholding")
FAULT, WITHHOLDING = 0, 1


@dataclass(frozen=True)
class Dispute:
    """A dispute as the court stores it; ``phase`` and ``kind`` by name."""

    job_id: str
    phase: str
    kind: str
    hop: int
    round: int
    committed: int
    revealed: int
    uphold_votes: int
    draw_block: int
    opened_at: int
    commit_ends_at: int
    reveal_ends_at: int
    challenger: str
    accused: str
    bond: int
    penalties: int
    evidence: str
    jurors: tuple[str, ...]


@dataclass(frozen=True)
class Ballot:
    seated: bool
    revealed: bool
    uphold: bool
    commitment: bytes


@dataclass(frozen=True)
class VerifierInfo:
    stake: int
    locked: int
    unbonding_at: int


def vote_commitment(job_id: str, round_: int, juror: str, uphold: bool, salt: bytes) -> bytes:
    """``keccak256(abi.encode(jobHash, round, juror, uphold, salt))``, as the court checks it."""
    body = encode(
        ["bytes32", "uint8", "address", "bool", "bytes32"],
        [bytes.fromhex(job_id[2:]), round_, Web3.to_checksum_address(juror), uphold, salt],
    )
    return bytes(Web3.keccak(body))


class Court:
    def __init__(self, w3: Web3, contract: Any) -> None:
        self.w3 = w3
        self.contract = contract
        self.address: str = contract.address

    # -- views -------------------------------------------------------------------------

    def params(self) -> dict[str, int]:
        return dict(call(self.contract.functions.params(), "params")._asdict())

    def is_verifier(self, verifier: str) -> bool:
        return call_as(bool, self.contract.functions.isVerifier(verifier), "isVerifier")

    def may_judge(self, verifier: str, job_id: str) -> bool:
        """An active verifier, or a juror seated on a dispute of this job."""
        return self.is_verifier(verifier) or self.get_ballot(job_id, verifier).seated

    def verifier_stake(self, verifier: str) -> int:
        return call_as(int, self.contract.functions.verifierStake(verifier), "verifierStake")

    def get_verifier(self, verifier: str) -> VerifierInfo:
        raw = call(self.contract.functions.getVerifier(verifier), "getVerifier")
        return VerifierInfo(raw.stake, raw.locked, raw.unbondingAt)

    def verifiers(self) -> list[str]:
        return list(call(self.contract.functions.verifiers(), "verifiers"))

    def total_verifier_stake(self) -> int:
        return call_as(int, self.contract.functions.totalVerifierStake(), "totalVerifierStake")

    def total_held(self) -> int:
        return call_as(int, self.contract.functions.totalHeld(), "totalHeld")

    def eligible_jurors(self, job_id: str, challenger: str) -> int:
        fn = self.contract.functions.eligibleJurors(_b32(job_id), challenger)
        return call_as(int, fn, "eligibleJurors")

    def get_dispute(self, job_id: str) -> Dispute:
        raw = call(self.contract.functions.getDispute(_b32(job_id)), "getDispute")
        return Dispute(
            job_id=job_id,
            phase=PHASES[raw.phase],
            kind=KINDS[raw.kind],
            hop=raw.hop,
            round=raw.round,
            committed=raw.committed,
            revealed=raw.revealed,
            uphold_votes=raw.upholdVotes,
            draw_block=raw.drawBlock,
            opened_at=raw.openedAt,
            commit_ends_at=raw.commitEndsAt,
            reveal_ends_at=raw.revealEndsAt,
            challenger=raw.challenger,
            accused=raw.accused,
            bond=raw.bond,
            penalties=raw.penalties,
            evidence="0x" + bytes(raw.evidence).hex(),
            jurors=tuple(raw.jurors),
        )

    def get_ballot(self, job_id: str, juror: str) -> Ballot:
        raw = call(self.contract.functions.getBallot(_b32(job_id), juror), "getBallot")
        return Ballot(raw.seated, raw.revealed, raw.uphold, bytes(raw.commitment))

    # -- verifiers ---------------------------------------------------------------------

    def stake_verifier(self, account: LocalAccount, amount: int, token: Token) -> TxResult:
        token.prepare_spend(account, self.address, amount, "stakeVerifier")
        fn = self.contract.functions.stakeVerifier(amount)
        return TxResult.of(send(self.w3, account, fn, "stakeVerifier"))

    def request_verifier_unstake(self, account: LocalAccount) -> TxResult:
        fn = self.contract.functions.requestVerifierUnstake()
        return TxResult.of(send(self.w3, account, fn, "requestVerifierUnstake"))

    def withdraw_verifier_stake(self, account: LocalAccount) -> TxResult:
        fn = self.contract.functions.withdrawVerifierStake()
        return TxResult.of(send(self.w3, account, fn, "withdrawVerifierStake"))

    # -- disputes ----------------------------------------------------------------------

    def open_dispute(
        self,
        account: LocalAccount,
        job_id: str,
        hop: int,
        kind: int,
        evidence: bytes,
        bond: int,
        token: Token,
    ) -> TxResult:
        token.prepare_spend(account, self.address, bond, "openDispute")
        fn = self.contract.functions.openDispute(_b32(job_id), hop, kind, evidence, bond)
        return TxResult.of(send(self.w3, account, fn, "openDispute"))

    def open_batched_dispute(
        self,
        account: LocalAccount,
        ref: tuple[object, ...],
        job: tuple[object, ...],
        proof: list[bytes],
        hop: int,
        kind: int,
        evidence: bytes,
        bond: int,
        token: Token,
    ) -> TxResult:
        """``openDispute`` on a job of a batch: ``ref``, ``job`` and ``proof`` as
        ``batch_tree.entry_ref``, ``BatchedJob.as_tuple`` and ``Entry.proof`` give them."""
        token.prepare_spend(account, self.address, bond, "openBatchedDispute")
        fn = self.contract.functions.openBatchedDispute(ref, job, proof, hop, kind, evidence, bond)
        return TxResult.of(send(self.w3, account, fn, "openBatchedDispute"))

    def draw_jury(self, account: LocalAccount, job_id: str) -> TxResult:
        fn = self.contract.functions.drawJury(_b32(job_id))
        return TxResult.of(send(self.w3, account, fn, "drawJury"))

    def commit_vote(self, account: LocalAccount, job_id: str, commitment: bytes) -> TxResult:
        fn = self.contract.functions.commitVote(_b32(job_id), commitment)
        return TxResult.of(send(self.w3, account, fn, "commitVote"))

    def reveal_vote(
        self, account: LocalAccount, job_id: str, uphold: bool, salt: bytes
    ) -> TxResult:
        fn = self.contract.functions.revealVote(_b32(job_id), uphold, salt)
        return TxResult.of(send(self.w3, account, fn, "revealVote"))

    def resolve(self, account: LocalAccount, job_id: str) -> TxResult:
        fn = self.contract.functions.resolve(_b32(job_id))
        return TxResult.of(send(self.w3, account, fn, "resolve"))


def _b32(job_id: str) -> bytes:
    return bytes.fromhex(job_id[2:])
