"""What ``sharedllm-node status`` says about money on its way: the batches this node posted
that are still in their challenge window, and what its ledger records as earned."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sharedllm.node.ledger import BATCH_POSTED, BATCH_POSTING, FINALIZED, SUBMITTED, Ledger


@dataclass(frozen=True)
class Earnings:
    paid: int  # wei paid for finalized jobs
    rewards: int  # wei of rewards on them
    pending: int  # wei of submitted jobs (whole job cost, every hop's share)
    finalized_jobs: int
    pending_jobs: int
    batches: list[dict[str, Any]]  # posted, not yet paid: id, jobs, posted_at (None if sending)

    def to_json(self) -> dict[str, Any]:
        return {
            "paid": str(self.paid),
            "rewards": str(self.rewards),
            "pending": str(self.pending),
            "finalizedJobs": self.finalized_jobs,
            "pendingJobs": self.pending_jobs,
            "pendingBatches": self.batches,
        }


def earnings(ledger_path: Path) -> Earnings | None:
    """The node's ledger summed up; None if this node never ran paid."""
    if not ledger_path.is_file():
        return None
    ledger = Ledger(ledger_path)
    try:
        done = list(ledger.with_status(FINALIZED))
        waiting = list(ledger.with_status(SUBMITTED))
        batches = [
            {
                "batchId": row["batch_id"],
                "jobs": len(ledger.in_batch(row["batch_key"])),
                "status": row["status"],
            }
            for row in ledger.batches(BATCH_POSTING, BATCH_POSTED)
        ]
        return Earnings(
            paid=sum(j.payout or 0 for j in done),
            rewards=sum(j.reward or 0 for j in done),
            pending=sum(j.cost or 0 for j in waiting),
            finalized_jobs=len(done),
            pending_jobs=len(waiting),
            batches=batches,
        )
    finally:
        ledger.close()
