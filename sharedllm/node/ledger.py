"""The node's ledger: every job it served, its receipts, its submission and its payout.

The ledger is the node's memory across restarts. A job is written as ``served`` (with all its
receipts) before the node tells the client the session is closed, so a crash afterwards cannot
forget it; the submitter then asks the chain before sending, so a crash between sending the
transaction and recording it cannot submit twice (the contract's replay guard would refuse a
second submission anyway, but asking first keeps the ledger honest and the gas unspent).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sharedllm.job_ledger import JobLedger

# Status of a job in the node's ledger, in the order it moves through them.
SERVED = "served"  # receipts recorded, not yet on-chain
SUBMITTED = "submitted"  # commitment on-chain, challenge window running
FINALIZED = "finalized"  # paid
CHALLENGED = "challenged"  # slashed or refunded
REFUSED = "refused"  # the chain refused the submission (e.g. the deadline passed)
STATUSES = (SERVED, SUBMITTED, FINALIZED, CHALLENGED, REFUSED)


@dataclass(frozen=True)
class LedgerJob:
    job_id: str
    job: dict
    signature: str
    hop: int
    hops: int
    tokens: int
    commitment: str
    status: str
    submit_tx: str | None
    cost: int | None
    payout: int | None
    reward: int | None
    error: str | None
    handed_over: bool = False  # a surviving hop that took the dead last hop's submission
    recovered: bool = False  # rebuilt from the step journal after a crash mid-answer

    @property
    def submits(self) -> bool:
        """Whether this node sends the job to the chain: the last hop (unless the job was
        recovered after a crash: it cannot know which steps reached the client), or the hop
        the dead last hop's receipts were handed to."""
        return (self.hop == self.hops - 1 and not self.recovered) or self.handed_over


class Ledger(JobLedger[LedgerJob]):
    STATUSES = STATUSES
    ORDER = "created_at"

    def _create(self) -> None:
        jobs = self._db["jobs"]
        if not jobs.exists():
            jobs.create(
                {
                    "job_id": str,
                    "job": str,
                    "signature": str,
                    "hop": int,
                    "hops": int,
                    "tokens": int,
                    "commitment": str,
                    "status": str,
                    "submit_tx": str,
                    "cost": str,
                    "payout": str,
                    "reward": str,
                    "error": str,
                    "handed_over": int,
                    "recovered": int,
                    "created_at": float,
                    "updated_at": float,
                },
                pk="job_id",
                not_null={"job", "signature", "status"},
            )
            jobs.create_index(["status"])
        else:  # a ledger from before receipt handoffs, or before step journals
            for column in ("handed_over", "recovered"):
                if column not in jobs.columns_dict:
                    jobs.add_column(column, int)
        receipts = self._db["receipts"]
        if not receipts.exists():
            receipts.create(
                {"job_id": str, "step": int, "hop": int, "receipt": str},
                pk=("job_id", "step", "hop"),
            )

    def record_served(
        self,
        job_id: str,
        job: dict,
        signature: str,
        hop: int,
        hops: int,
        tokens: int,
        commitment: str,
        receipts: Iterable[tuple[int, int, str]],
        recovered: bool = False,
    ) -> None:
        """Record a served job and its receipts in one transaction; idempotent per job."""
        now = time.time()
        with self._db.conn:
            if self._db["jobs"].count_where("job_id = ?", [job_id]):
                return
            self._db["jobs"].insert(
                {
                    "job_id": job_id,
                    "job": json.dumps(job, sort_keys=True),
                    "signature": signature,
                    "hop": hop,
                    "hops": hops,
                    "tokens": tokens,
                    "commitment": commitment,
                    "status": SERVED,
                    "recovered": int(recovered),
                    "created_at": now,
                    "updated_at": now,
                }
            )
            self._db["receipts"].insert_all(
                ({"job_id": job_id, "step": s, "hop": h, "receipt": r} for s, h, r in receipts),
                replace=True,
            )

    def take_over(
        self, job_id: str, tokens: int, commitment: str, receipts: Iterable[tuple[int, int, str]]
    ) -> bool:
        """Make this node the submitter of a served job with the route's full receipts.

        The job's receipts are replaced by exactly the committed set, so the ledger keeps
        what the chain will hold. False (and nothing changes) unless the job is still
        ``served`` and not taken over already.
        """
        with self._db.conn:
            rows = list(self._db["jobs"].rows_where("job_id = ?", [job_id]))
            if not rows or rows[0]["status"] != SERVED or rows[0].get("handed_over"):
                return False
            self._db["jobs"].update(
                job_id,
                {
                    "tokens": tokens,
                    "commitment": commitment,
                    "handed_over": 1,
                    "updated_at": time.time(),
                },
            )
            self._db.execute("DELETE FROM receipts WHERE job_id = ?", [job_id])
            self._db["receipts"].insert_all(
                {"job_id": job_id, "step": s, "hop": h, "receipt": r} for s, h, r in receipts
            )
        return True

    def set_status(self, job_id: str, status: str, **fields: object) -> None:
        """Amounts (wei) are kept as decimal strings: they overflow sqlite's integers."""
        values = {
            k: (str(v) if isinstance(v, int) and not isinstance(v, bool) else v)
            for k, v in fields.items()
            if v is not None
        }
        self._update_status(job_id, status, values)

    def created_at(self, job_id: str) -> float:
        return self._db["jobs"].get(job_id)["created_at"]

    def receipts(self, job_id: str) -> list[str]:
        return [
            row["receipt"]
            for row in self._db["receipts"].rows_where("job_id = ?", [job_id], order_by="step, hop")
        ]

    def receipts_by_position(self, job_id: str) -> dict[tuple[int, int], str]:
        """The job's receipts keyed by (step, hop)."""
        return {
            (row["step"], row["hop"]): row["receipt"]
            for row in self._db["receipts"].rows_where("job_id = ?", [job_id])
        }

    @staticmethod
    def _parse(row: dict) -> LedgerJob:
        return _job(row)


def _job(row: dict) -> LedgerJob:
    return LedgerJob(
        job_id=row["job_id"],
        job=json.loads(row["job"]),
        signature=row["signature"],
        hop=row["hop"],
        hops=row["hops"],
        tokens=row["tokens"],
        commitment=row["commitment"],
        status=row["status"],
        submit_tx=row["submit_tx"],
        cost=_int(row["cost"]),
        payout=_int(row["payout"]),
        reward=_int(row["reward"]),
        error=row["error"],
        handed_over=bool(row.get("handed_over")),
        recovered=bool(row.get("recovered")),
    )


def _int(value: str | None) -> int | None:
    # Amounts are stored as decimal text: SQLite integers stop at 2**63.
    return int(value) if value is not None else None
