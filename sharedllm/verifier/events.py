"""What the verifier reads from the chain: new commitments, disputes, the juries it sits on,
block hashes.

Reads go through ``get_logs`` over bounded block ranges (a public RPC refuses huge ranges)
rather than filters, because a filter lives on the RPC node and is lost when it restarts;
the range the verifier has read is kept in its own ledger instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sharedllm.chain.connection import Chain
from sharedllm.chain.transact import rpc
from sharedllm.verifier.ledger import SeenBatch, SeenCase, SeenDispute

MAX_RANGE = 2_000  # blocks per get_logs call


@dataclass(frozen=True)
class Commitment:
    """One ``ResultSubmitted`` event."""

    job_id: str
    block: int
    submitter: str
    commitment: str


class ChainEvents:
    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self._events = chain.market.contract.events

    def head(self) -> int:
        return rpc(lambda: self.chain.w3.eth.block_number, "blockNumber")

    def chain_time(self) -> float:
        """Now, by the chain's clock: the wall clock, or the latest block's time if a test
        moved the chain ahead of it (challenge windows are judged by block time)."""
        latest = rpc(lambda: self.chain.w3.eth.get_block("latest"), "getBlock")
        return max(time.time(), float(latest["timestamp"]))

    def block_hash(self, number: int) -> bytes:
        block = rpc(lambda: self.chain.w3.eth.get_block(number), "getBlock")
        return bytes(block["hash"])

    def commitments(self, from_block: int, to_block: int) -> list[Commitment]:
        """``ResultSubmitted`` events in ``[from_block, to_block]``, oldest first."""
        found: list[Commitment] = []
        for start in range(from_block, to_block + 1, MAX_RANGE):
            end = min(start + MAX_RANGE - 1, to_block)
            logs = rpc(
                lambda s=start, e=end: self._events.ResultSubmitted().get_logs(
                    from_block=s, to_block=e
                ),
                "getLogs ResultSubmitted",
            )
            for log in logs:
                args = log["args"]
                found.append(
                    Commitment(
                        "0x" + bytes(args["jobHash"]).hex(),
                        log["blockNumber"],
                        args["submitter"],
                        "0x" + bytes(args["commitment"]).hex(),
                    )
                )
        return sorted(found, key=lambda c: (c.block, c.job_id))

    def batches(self, from_block: int, to_block: int) -> list[SeenBatch]:
        """``BatchPosted`` events in ``[from_block, to_block]``, oldest first."""
        found: list[SeenBatch] = []
        for start in range(from_block, to_block + 1, MAX_RANGE):
            end = min(start + MAX_RANGE - 1, to_block)
            for p in self.chain.batches.posted_since(start, end):
                found.append(SeenBatch(p.batch_id, p.block, p.poster, "0x" + p.entries_hash.hex()))
        return sorted(found, key=lambda b: b.batch_id)

    def dispute_tx(self, job_id: str, challenger: str, from_block: int) -> tuple[str, int] | None:
        """The transaction and block of ``challenger``'s ``DisputeOpened`` on the job."""
        logs = rpc(
            lambda: self.chain.court.contract.events.DisputeOpened().get_logs(
                from_block=from_block,
                argument_filters={"jobHash": bytes.fromhex(job_id[2:]), "challenger": challenger},
            ),
            "getLogs DisputeOpened",
        )
        if not logs:
            return None
        return "0x" + bytes(logs[0]["transactionHash"]).hex(), logs[0]["blockNumber"]

    def disputes(
        self, from_block: int, to_block: int, juror: str
    ) -> tuple[list[SeenDispute], list[SeenCase]]:
        """``DisputeOpened`` events, and the ``JurorDrawn`` events that seat ``juror``, in
        ``[from_block, to_block]``."""
        court = self.chain.court.contract.events
        opened: list[SeenDispute] = []
        drawn: list[SeenCase] = []
        for start in range(from_block, to_block + 1, MAX_RANGE):
            end = min(start + MAX_RANGE - 1, to_block)
            for log in rpc(
                lambda s=start, e=end: court.DisputeOpened().get_logs(from_block=s, to_block=e),
                "getLogs DisputeOpened",
            ):
                a = log["args"]
                job_id = "0x" + bytes(a["jobHash"]).hex()
                opened.append(
                    SeenDispute(job_id, log["blockNumber"], a["challenger"], a["hop"], a["kind"])
                )
            for log in rpc(
                lambda s=start, e=end: court.JurorDrawn().get_logs(
                    from_block=s, to_block=e, argument_filters={"juror": juror}
                ),
                "getLogs JurorDrawn",
            ):
                a = log["args"]
                job_id = "0x" + bytes(a["jobHash"]).hex()
                drawn.append(
                    SeenCase(job_id, a["round"], log["blockNumber"], a["commitEndsAt"],
                             a["revealEndsAt"])
                )  # fmt: skip
        return opened, drawn
