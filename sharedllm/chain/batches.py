"""The BatchSettlement: many jobs posted in one transaction, paid in another."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3 import Web3
from web3.logs import DISCARD

from sharedllm.chain.batch_tree import ENTRY_TYPE, BatchedJob, Entry, Payout, entry_ref
from sharedllm.chain.token import Token
from sharedllm.chain.transact import TxResult, call, call_as, rpc, send
from sharedllm.errors import ChainError

BATCH_STATUS = ("None", "Posted", "Finalized")
FAULTS = (
    "None",
    "BadRoute",
    "WrongClient",
    "BadSignature",
    "Expired",
    "BadTokens",
    "BadPrices",
    "PosterNotInRoute",
    "NotCredited",
    "Replayed",
    "Withheld",
)


@dataclass(frozen=True)
class BatchRecord:
    """A posted batch as the contract stores it; bit ``i`` of the bitmaps is entry ``i``."""

    batch_id: int
    poster: str
    posted_at: int
    status: str
    entries: int
    entries_hash: bytes
    payout_hash: bytes
    outstanding: int
    open_demands: int
    adjusted: bool
    unfunded: int
    voided: int
    lifted: int
    demanded: int


@dataclass(frozen=True)
class Posted:
    batch_id: int
    total: int
    unfunded: int
    payout: Payout
    tx: TxResult


@dataclass(frozen=True)
class BatchPosted:
    """A ``BatchPosted`` event, with the block and transaction that carried it."""

    batch_id: int
    poster: str
    entries_hash: bytes
    total: int
    payout: Payout
    block: int
    tx: str


@dataclass(frozen=True)
class EntryPosted:
    """An ``EntryPosted`` event: entry ``index`` of the batch debited ``debit`` from its
    client's escrow, or was posted unfunded."""

    batch_id: int
    index: int
    debit: int
    funded: bool
    block: int


@dataclass(frozen=True)
class Demand:
    """An open demand for an entry's jobs: who demanded it and until when it may be shown."""

    demander: str
    due_at: int


def _posted(log: Any) -> BatchPosted:
    args = log["args"]
    return BatchPosted(
        int(args["batchId"]),
        args["poster"],
        bytes(args["entriesHash"]),
        int(args["total"]),
        _payout_of(args),
        int(log["blockNumber"]),
        "0x" + bytes(log["transactionHash"]).hex(),
    )


def _payout_of(args: Any) -> Payout:
    return Payout(
        tuple(args["nodes"]), tuple(int(a) for a in args["amounts"]),
        tuple(int(r) for r in args["rewards"]),
    )  # fmt: skip


class Batches:
    def __init__(self, w3: Web3, contract: Any) -> None:
        self.w3 = w3
        self.contract = contract
        self.address: str = contract.address

    # -- views -------------------------------------------------------------------------

    def get_batch(self, batch_id: int) -> BatchRecord:
        raw = call(self.contract.functions.getBatch(batch_id), "getBatch")
        return BatchRecord(
            batch_id,
            raw.poster,
            int(raw.postedAt),
            BATCH_STATUS[raw.status],
            int(raw.entries),
            bytes(raw.entriesHash),
            bytes(raw.payoutHash),
            int(raw.outstanding),
            int(raw.openDemands),
            bool(raw.adjusted),
            int(raw.unfunded),
            int(raw.voided),
            int(raw.lifted),
            int(raw.demanded),
        )

    def batch_count(self) -> int:
        return call_as(int, self.contract.functions.batchCount(), "batchCount")

    def params(self) -> dict[str, int]:
        return dict(call(self.contract.functions.params(), "params")._asdict())

    def leaf_hash(self, job: BatchedJob) -> bytes:
        return bytes(call(self.contract.functions.leafHash(job.as_tuple()), "leafHash"))

    def entry_hash(self, entry: Entry) -> bytes:
        return bytes(call(self.contract.functions.entryHash(entry.as_tuple()), "entryHash"))

    def leaf_fault(self, job: BatchedJob, client: str, poster: str, posted_at: int) -> str:
        fault = call(
            self.contract.functions.leafFault(job.as_tuple(), client, poster, posted_at),
            "leafFault",
        )
        return FAULTS[fault]

    def posted_by(self, poster: str, from_block: int = 0) -> list[BatchPosted]:
        """``BatchPosted`` events of one poster since ``from_block``, oldest first."""
        logs = rpc(
            lambda: self.contract.events.BatchPosted().get_logs(
                from_block=from_block, argument_filters={"poster": poster}
            ),
            "BatchPosted logs",
        )
        return [_posted(log) for log in logs]

    def demand_of(self, batch_id: int, index: int) -> Demand:
        raw = call(self.contract.functions.demandOf(batch_id, index), "demandOf")
        return Demand(raw.demander, int(raw.dueAt))

    def posted_entries(self, batch_id: int) -> list[tuple[object, ...]]:
        """The entries of a batch exactly as posted, read from ``postBatch``'s calldata (a
        poster that will not serve its batch cannot hide what it sent the chain)."""
        logs = rpc(
            lambda: self.contract.events.BatchPosted().get_logs(
                from_block=0, argument_filters={"batchId": batch_id}
            ),
            "BatchPosted logs",
        )
        if not logs:
            raise ChainError(f"no batch {batch_id} was posted")
        tx = rpc(lambda: self.w3.eth.get_transaction(logs[0]["transactionHash"]), "getTransaction")
        _, args = self.contract.decode_function_input(tx["input"])
        return [
            (
                e["client"], bytes(e["jobsRoot"]), int(e["jobs"]),
                [(c["node"], int(c["amount"]), int(c["reward"])) for c in e["credits"]],
            )
            for e in args["entries"]
        ]  # fmt: skip

    def posted_since(self, from_block: int, to_block: int) -> list[BatchPosted]:
        """Every ``BatchPosted`` event in the block range, oldest first."""
        logs = rpc(
            lambda: self.contract.events.BatchPosted().get_logs(
                from_block=from_block, to_block=to_block
            ),
            "BatchPosted logs",
        )
        return [_posted(log) for log in logs]

    def entries_posted(self, client: str, from_block: int = 0) -> list[EntryPosted]:
        """``EntryPosted`` events of one client since ``from_block``, oldest first."""
        logs = rpc(
            lambda: self.contract.events.EntryPosted().get_logs(
                from_block=from_block, argument_filters={"client": client}
            ),
            "EntryPosted logs",
        )
        return [
            EntryPosted(
                int(log["args"]["batchId"]),
                int(log["args"]["index"]),
                int(log["args"]["debit"]),
                bool(log["args"]["funded"]),
                int(log["blockNumber"]),
            )
            for log in logs
        ]

    def paid(self, batch_id: int, node: str, from_block: int = 0) -> tuple[int, int]:
        """What batch ``batch_id`` paid ``node``: pay and reward (zero if not finalized)."""
        logs = rpc(
            lambda: self.contract.events.NodePaid().get_logs(
                from_block=from_block, argument_filters={"batchId": batch_id, "node": node}
            ),
            "NodePaid logs",
        )
        return (
            sum(int(log["args"]["amount"]) for log in logs),
            sum(int(log["args"]["reward"]) for log in logs),
        )

    # -- transactions ------------------------------------------------------------------

    def post(
        self, account: LocalAccount, entries: Sequence[Entry], gas: int | None = None
    ) -> Posted:
        fn = self.contract.functions.postBatch([e.as_tuple() for e in entries])
        receipt = send(self.w3, account, fn, "postBatch", gas=gas)
        events = self.contract.events.BatchPosted().process_receipt(receipt, errors=DISCARD)
        if not events:
            raise ChainError("postBatch: no BatchPosted event in the receipt")
        batch_id = int(events[0]["args"]["batchId"])
        unfunded = 0
        for event in self.contract.events.EntryPosted().process_receipt(receipt, errors=DISCARD):
            if not event["args"]["funded"]:
                unfunded |= 1 << int(event["args"]["index"])
        args = events[0]["args"]
        return Posted(
            batch_id, int(args["total"]), unfunded, _payout_of(args), TxResult.of(receipt)
        )

    def finalize(
        self, account: LocalAccount, batch_id: int, payout: Payout, gas: int | None = None
    ) -> TxResult:
        fn = self.contract.functions.finalizeBatch(batch_id, payout.as_tuple())
        return TxResult.of(send(self.w3, account, fn, "finalizeBatch", gas=gas))

    def prove_bad_leaf(
        self, account: LocalAccount, batch_id: int, entries: Sequence[Entry], index: int, leaf: int
    ) -> TxResult:
        entry = entries[index]
        fn = self.contract.functions.proveBadLeaf(
            entry_ref(batch_id, entries, index), entry.jobs[leaf].as_tuple(), entry.proof(leaf)
        )
        return TxResult.of(send(self.w3, account, fn, "proveBadLeaf"))

    def prove_replay(
        self,
        account: LocalAccount,
        first: tuple[int, Sequence[Entry], int, int] | None,
        second: tuple[int, Sequence[Entry], int, int],
    ) -> TxResult:
        """Void ``second``'s entry: its leaf's job is paid in ``first`` (batch id, entries,
        entry index, leaf index) or, with ``first`` None, as a job of its own."""
        batch_id, entries, index, leaf = second
        entry = entries[index]
        if first is None:
            first_ref: tuple[object, ...] = (0, 0, [], (entry.client, b"\x00" * 32, 0, []))
            first_leaf, first_proof = entry.jobs[leaf].leaf_tuple(), []
        else:
            f_id, f_entries, f_index, f_leaf = first
            first_ref = entry_ref(f_id, f_entries, f_index)
            first_leaf = f_entries[f_index].jobs[f_leaf].leaf_tuple()
            first_proof = f_entries[f_index].proof(f_leaf)
        fn = self.contract.functions.proveReplay(
            first_ref, first_leaf, first_proof, entry_ref(batch_id, entries, index),
            entry.jobs[leaf].leaf_tuple(), entry.proof(leaf),
        )  # fmt: skip
        return TxResult.of(send(self.w3, account, fn, "proveReplay"))

    def prove_resubmitted(
        self, account: LocalAccount, batch_id: int, entries: Sequence[Entry], index: int, leaf: int
    ) -> TxResult:
        """Overturn the market record of a job this batch had already paid."""
        entry = entries[index]
        fn = self.contract.functions.proveResubmitted(
            entry_ref(batch_id, entries, index), entry.jobs[leaf].leaf_tuple(), entry.proof(leaf)
        )
        return TxResult.of(send(self.w3, account, fn, "proveResubmitted"))

    def prove_overcharge(
        self,
        account: LocalAccount,
        batch_id: int,
        entries: Sequence[Entry],
        index: int,
        leaf: int,
        receipts: bytes,
    ) -> TxResult:
        """Lift a batched job and prove it over-charged, in one transaction."""
        entry = entries[index]
        fn = self.contract.functions.proveOvercharge(
            entry_ref(batch_id, entries, index), entry.jobs[leaf].as_tuple(), entry.proof(leaf),
            receipts,
        )  # fmt: skip
        return TxResult.of(send(self.w3, account, fn, "proveOvercharge"))

    def demand(self, account: LocalAccount, batch_id: int, index: int, token: Token) -> TxResult:
        token.prepare_spend(account, self.address, self.params()["demandBond"], "demandEntry")
        fn = self.contract.functions.demandEntry(batch_id, index)
        return TxResult.of(send(self.w3, account, fn, "demandEntry"))

    def show(
        self, account: LocalAccount, batch_id: int, entries: Sequence[Entry], index: int
    ) -> TxResult:
        fn = self.contract.functions.showEntry(
            entry_ref(batch_id, entries, index), [j.as_tuple() for j in entries[index].jobs]
        )
        return TxResult.of(send(self.w3, account, fn, "showEntry"))

    def forfeit(
        self, account: LocalAccount, batch_id: int, entries: Sequence[Entry], index: int
    ) -> TxResult:
        fn = self.contract.functions.forfeitEntry(entry_ref(batch_id, entries, index))
        return TxResult.of(send(self.w3, account, fn, "forfeitEntry"))

    def forfeit_posted(
        self, account: LocalAccount, batch_id: int, posted: list[tuple[object, ...]], index: int
    ) -> TxResult:
        """``forfeitEntry`` from the entries as posted (``posted_entries``)."""
        hashes = [keccak(encode([ENTRY_TYPE], [entry])) for entry in posted]
        fn = self.contract.functions.forfeitEntry((batch_id, index, hashes, posted[index]))
        return TxResult.of(send(self.w3, account, fn, "forfeitEntry"))
