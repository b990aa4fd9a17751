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
from dataclasses import dataclass, field

from sharedllm.job_ledger import JobLedger

# Status of a job in the node's ledger, in the order it moves through them.
SERVED = "served"  # receipts recorded, not yet on-chain
SUBMITTED = "submitted"  # commitment on-chain, challenge window running
FINALIZED = "finalized"  # paid
CHALLENGED = "challenged"  # slashed or refunded
REFUSED = "refused"  # the chain refused the submission (e.g. the deadline passed)
STATUSES = (SERVED, SUBMITTED, FINALIZED, CHALLENGED, REFUSED)

# Status of a batch this node posts.
BATCH_POSTING = "posting"  # written, its transaction maybe sent
BATCH_POSTED = "posted"  # on-chain, challenge window running
BATCH_FINALIZED = "finalized"  # paid (or every entry voided)
BATCH_REFUSED = "refused"  # the chain refused it


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
    batch_key: str | None = None  # the batch being posted that holds it (its entries hash)
    batch_id: int | None = None  # the posted batch that holds it
    lifted: bool = False  # taken out of its batch for a dispute: settled as a job of its own
    amendments: list[dict] = field(default_factory=list)  # the client's hop replacements, wire

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
            jobs.add_column("batch_key", str)
            jobs.add_column("batch_id", int)
            jobs.add_column("lifted", int)
            jobs.add_column("amendments", str)
        else:  # a ledger from before receipt handoffs, step journals, or batches
            for column, kind in (
                ("handed_over", int),
                ("recovered", int),
                ("batch_key", str),
                ("batch_id", int),
                ("lifted", int),
                ("amendments", str),
            ):
                if column not in jobs.columns_dict:
                    jobs.add_column(column, kind)
        batches = self._db["batches"]
        if not batches.exists():
            # One row per batch this node posts: written before the transaction, so that a
            # node killed while posting finds it, asks the chain, and posts it at most once.
            batches.create(
                {
                    "batch_key": str,
                    "batch_id": int,
                    "status": str,
                    "from_block": int,
                    "body": str,
                    "payout": str,
                    "created_at": float,
                    "posted_at": float,
                    "updated_at": float,
                },
                pk="batch_key",
                not_null={"body", "status"},
            )
        elif "from_block" not in batches.columns_dict:  # a ledger from before this column
            batches.add_column("from_block", int)
        follow = self._db["followed"]
        if not follow.exists():
            # Other posters' batches this node is paid by: the batch, and how far its log
            # scan got.
            follow.create({"key": str, "value": int}, pk="key")
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
        amendments: list[dict] | None = None,
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
                    "amendments": json.dumps(amendments) if amendments else None,
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

    # -- batches ------------------------------------------------------------------------

    def open_batch(self, batch_key: str, body: str, job_ids: list[str], from_block: int) -> None:
        """Record a batch about to be posted and claim its jobs, in one transaction;
        ``from_block`` is the chain's head before it is sent (where to look for it)."""
        now = time.time()
        with self._db.conn:
            self._db["batches"].insert(
                {
                    "batch_key": batch_key,
                    "status": BATCH_POSTING,
                    "from_block": from_block,
                    "body": body,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            for job_id in job_ids:
                self._db["jobs"].update(job_id, {"batch_key": batch_key, "updated_at": now})

    def batch_posted(
        self, batch_key: str, batch_id: int, payout: str, costs: dict[str, int]
    ) -> None:
        """The batch is on-chain as ``batch_id``: its jobs are submitted, each at its cost."""
        now = time.time()
        with self._db.conn:
            self._db["batches"].update(
                batch_key,
                {
                    "status": BATCH_POSTED,
                    "batch_id": batch_id,
                    "payout": payout,
                    "posted_at": now,
                    "updated_at": now,
                },
            )
            for job_id, cost in costs.items():
                self._db["jobs"].update(
                    job_id,
                    {
                        "status": SUBMITTED,
                        "batch_id": batch_id,
                        "cost": str(cost),
                        "updated_at": now,
                    },
                )

    def batch_dropped(self, batch_key: str, error: str) -> None:
        """The chain refused the batch: its jobs are refused with the contract's error."""
        now = time.time()
        with self._db.conn:
            self._db["batches"].update(batch_key, {"status": BATCH_REFUSED, "updated_at": now})
            self._db.execute(
                "UPDATE jobs SET status = ?, error = ?, updated_at = ? WHERE batch_key = ?",
                [REFUSED, error, now, batch_key],
            )

    def set_batch_status(self, batch_key: str, status: str) -> None:
        with self._db.conn:
            self._db["batches"].update(batch_key, {"status": status, "updated_at": time.time()})

    def batches(self, *statuses: str) -> list[dict]:
        marks = ",".join("?" for _ in statuses)
        where = f"status in ({marks})" if statuses else None
        return list(self._db["batches"].rows_where(where, list(statuses), order_by="created_at"))

    def batch_row(self, batch_key: str) -> dict:
        return dict(self._db["batches"].get(batch_key))

    def batch_by_id(self, batch_id: int) -> dict | None:
        rows = list(self._db["batches"].rows_where("batch_id = ?", [batch_id]))
        return rows[0] if rows else None

    def in_batch(self, batch_key: str) -> list[LedgerJob]:
        return [
            _job(row)
            for row in self._db["jobs"].rows_where(
                "batch_key = ?", [batch_key], order_by="created_at"
            )
        ]

    def mark_batched(self, job_id: str, batch_id: int, cost: int) -> None:
        """Another node's batch holds this job (this node was a hop of its route)."""
        self.set_status(job_id, SUBMITTED, batch_id=batch_id, cost=cost)

    def mark_lifted(self, job_id: str) -> None:
        with self._db.conn:
            self._db["jobs"].update(job_id, {"lifted": 1, "updated_at": time.time()})

    def cursor(self, key: str) -> int:
        row = list(self._db["followed"].rows_where("key = ?", [key]))
        return int(row[0]["value"]) if row else 0

    def cursor_keys(self, prefix: str) -> list[str]:
        return [row["key"] for row in self._db["followed"].rows_where("key LIKE ?", [prefix + "%"])]

    def set_cursor(self, key: str, value: int) -> None:
        with self._db.conn:
            self._db["followed"].upsert({"key": key, "value": value}, pk="key")

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
        batch_key=row.get("batch_key"),
        batch_id=row.get("batch_id"),
        lifted=bool(row.get("lifted")),
        amendments=json.loads(row["amendments"]) if row.get("amendments") else [],
    )


def _int(value: str | None) -> int | None:
    # Amounts are stored as decimal text: SQLite integers stop at 2**63.
    return int(value) if value is not None else None
