"""What the verifier reads from the chain: new commitments, block hashes, its own votes.

Reads go through ``get_logs`` over bounded block ranges (a public RPC refuses huge ranges)
rather than filters, because a filter lives on the RPC node and is lost when it restarts;
the range the verifier has read is kept in its own ledger instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sharedllm.chain.connection import Chain
from sharedllm.chain.transact import rpc

MAX_RANGE = 2_000  # blocks per get_logs call


@dataclass(frozen=True)
class Commitment:
    """One ``ResultSubmitted`` event."""

    job_id: str
    block: int
    submitter: str
    commitment: str


@dataclass(frozen=True)
class Vote:
    """One ``ChallengeVoted`` event of this verifier."""

    job_id: str
    hop: int
    evidence: str
    tx: str
    block: int


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

    def our_vote(self, job_id: str, verifier: str, from_block: int) -> Vote | None:
        """This verifier's ``ChallengeVoted`` for the job, if it is on-chain."""
        logs = rpc(
            lambda: self._events.ChallengeVoted().get_logs(
                from_block=from_block,
                argument_filters={"jobHash": bytes.fromhex(job_id[2:]), "verifier": verifier},
            ),
            "getLogs ChallengeVoted",
        )
        if not logs:
            return None
        log = logs[0]
        return Vote(
            job_id,
            log["args"]["hop"],
            "0x" + bytes(log["args"]["evidence"]).hex(),
            "0x" + bytes(log["transactionHash"]).hex(),
            log["blockNumber"],
        )
