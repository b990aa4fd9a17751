"""The verifier's ledger: where it is in the chain, every job it saw, every check, dispute
and jury case.

It is the verifier's memory across restarts. The cursor and everything found below it (jobs,
disputes, the juries it was drawn for) move in one transaction, so a crash can neither skip
an event nor see one twice. A selected job is marked ``checking`` before any work and
``passed``/``challenged``/``missed`` after, then ``upheld``/``rejected`` when its dispute
ends; a restarted verifier re-does every job still ``checking``, asking the chain first
whether its dispute already landed, so it never opens a second one.

A jury case keeps its vote and salt before the commitment is sent: a verifier that crashes
after committing reveals the same vote after its restart, and one that crashes before it
sends the same commitment, never a second, different one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from eth_utils import keccak

from sharedllm import paths
from sharedllm.job_ledger import JobLedger

# Status of a job in the verifier's ledger.
SKIPPED = "skipped"  # not selected by the draw
SELECTED = "selected"  # selected, not started
CHECKING = "checking"  # work started; re-done after a restart
PASSED = "passed"  # every hop within tolerance
CHALLENGED = "challenged"  # our dispute (or over-charge proof) is on-chain
UPHELD = "upheld"  # the fault stood: a jury upheld our dispute, or the proof overturned the job
REJECTED = "rejected"  # the jury did not uphold our dispute
MISSED = "missed"  # could not be checked in time (the reason says why)
STATUSES = (SKIPPED, SELECTED, CHECKING, PASSED, CHALLENGED, UPHELD, REJECTED, MISSED)
OPEN = (SELECTED, CHECKING)

# Status of a jury case (this verifier drawn as a juror).
DRAWN = "drawn"  # seated; not judged yet
JUDGED = "judged"  # vote and salt kept; the commitment may or may not be on-chain
COMMITTED = "committed"  # the commitment is on-chain
REVEALED = "revealed"  # the vote is on-chain
CLOSED = "closed"  # the round ended (``outcome`` says how)
LAPSED = "lapsed"  # a window closed before this verifier acted (``reason`` says why)
CASE_OPEN = (DRAWN, JUDGED, COMMITTED, REVEALED)

# Status of a posted batch this verifier follows.
BATCH_NEW = "new"  # seen on chain; its jobs not read yet
BATCH_AUDITED = "audited"  # its jobs read, checked against every rule, and drawn from
BATCH_DEMANDED = "demanded"  # its poster would not show it: entries demanded on chain
BATCH_DONE = "done"  # nothing more to do (shown, forfeited, or past its window)


def ledger_path(address: str) -> Path:
    return paths.home() / "verifiers" / address / "ledger.db"


@dataclass(frozen=True)
class SeenJob:
    """A ``ResultSubmitted`` event, or a job of a posted batch, and this verifier's draw for
    it; ``batch_id`` names the batch (None for a job submitted on its own)."""

    job_id: str
    block: int
    submitter: str
    commitment: str
    random: str
    selected: bool
    batch_id: int | None = None


@dataclass(frozen=True)
class SeenBatch:
    """A ``BatchPosted`` event."""

    batch_id: int
    block: int
    poster: str
    entries_hash: str


@dataclass(frozen=True)
class LedgerJob:
    job_id: str
    block: int
    submitter: str
    commitment: str
    random: str
    selected: bool
    status: str
    hop: int | None
    reason: str | None
    evidence: str | None
    challenge_tx: str | None
    batch_id: int | None = None


@dataclass(frozen=True)
class SeenDispute:
    """A ``DisputeOpened`` event."""

    job_id: str
    block: int
    challenger: str
    hop: int
    kind: int


@dataclass(frozen=True)
class SeenCase:
    """A ``JurorDrawn`` event naming this verifier."""

    job_id: str
    round: int
    block: int
    commit_ends_at: int
    reveal_ends_at: int


@dataclass(frozen=True)
class Case:
    job_id: str
    round: int
    block: int
    commit_ends_at: int
    reveal_ends_at: int
    status: str
    uphold: bool | None
    salt: str | None
    reason: str | None
    outcome: str | None


@dataclass(frozen=True)
class Evidence:
    """What a challenge rests on; its hash is the 32 bytes sent with the challenge."""

    job_id: str
    hop: int
    reason: str
    step: int | None = None
    position: int | None = None
    score: float | None = None
    detail: str = ""

    def record(self) -> dict:
        return {
            "job_id": self.job_id,
            "hop": self.hop,
            "reason": self.reason,
            "step": self.step,
            "position": self.position,
            # JSON has no inf; a string keeps the record parseable and the hash stable.
            "score": None if self.score is None else repr(float(self.score)),
            "detail": self.detail,
        }

    def canonical(self) -> bytes:
        return json.dumps(self.record(), sort_keys=True, separators=(",", ":")).encode()

    def digest(self) -> bytes:
        return keccak(self.canonical())


class VerifierLedger(JobLedger[LedgerJob]):
    STATUSES = STATUSES
    ORDER = "block, job_id"

    def _create(self) -> None:
        db = self._db
        if not db["meta"].exists():
            db["meta"].create({"key": str, "value": str}, pk="key")
        if not db["jobs"].exists():
            db["jobs"].create(
                {
                    "job_id": str,
                    "block": int,
                    "submitter": str,
                    "commitment": str,
                    "random": str,
                    "selected": int,
                    "status": str,
                    "hop": int,
                    "reason": str,
                    "evidence": str,
                    "challenge_tx": str,
                    "seen_at": float,
                    "updated_at": float,
                },
                pk="job_id",
                not_null={"status", "random"},
            )
            db["jobs"].create_index(["status"])
        if "batch_id" not in db["jobs"].columns_dict:  # a ledger from before batches
            db["jobs"].add_column("batch_id", int)
        if not db["batches"].exists():
            # Every posted batch seen, and once read from its poster, its jobs as posted
            # (``body``): the proofs against it need them for as long as it can be proven.
            db["batches"].create(
                {"batch_id": int, "block": int, "poster": str, "entries_hash": str,
                 "status": str, "body": str, "reason": str, "updated_at": float},
                pk="batch_id",
                not_null={"status"},
            )  # fmt: skip
        if not db["batched_jobs"].exists():
            # Where each batched job sits, to find the same job paid twice.
            db["batched_jobs"].create(
                {"job_id": str, "batch_id": int, "entry": int, "leaf": int}, pk="job_id"
            )
        if not db["resubmitted"].exists():
            # Jobs submitted on their own that a batch already held, until proven.
            db["resubmitted"].create({"job_id": str, "done": int}, pk="job_id")
        if not db["checks"].exists():
            db["checks"].create(
                {
                    "id": int,
                    "job_id": str,
                    "hop": int,
                    "ok": int,
                    "reason": str,
                    "step": int,
                    "position": int,
                    "score": float,
                    "worst_score": float,
                    "cpu_seconds": float,
                    "detail": str,
                    "at": float,
                },
                pk="id",
            )
            db["checks"].create_index(["job_id"])
        if not db["evidence"].exists():
            db["evidence"].create({"hash": str, "job_id": str, "record": str}, pk="hash")
        if not db["disputes"].exists():
            db["disputes"].create(
                {"job_id": str, "block": int, "challenger": str, "hop": int, "kind": int,
                 "outcome": str, "updated_at": float},
                pk="job_id",
            )  # fmt: skip
        if not db["cases"].exists():
            db["cases"].create(
                {"job_id": str, "round": int, "block": int, "commit_ends_at": int,
                 "reveal_ends_at": int, "status": str, "uphold": int, "salt": str,
                 "reason": str, "detail": str, "commit_tx": str, "reveal_tx": str,
                 "outcome": str, "updated_at": float},
                pk=("job_id", "round"),
                not_null={"status"},
            )  # fmt: skip
        if not db["challenges"].exists():
            db["challenges"].create(
                {"job_id": str, "hop": int, "evidence": str, "tx": str, "block": int, "at": float},
                pk="job_id",
            )

    # -- the cursor and the jobs below it --------------------------------------------------

    def cursor(self, default: int) -> int:
        rows = list(self._db["meta"].rows_where("key = ?", ["cursor"]))
        return int(rows[0]["value"]) if rows else default

    def record_seen(
        self,
        jobs: Iterable[SeenJob],
        next_block: int,
        disputes: Iterable[SeenDispute] = (),
        cases: Iterable[SeenCase] = (),
        batches: Iterable[SeenBatch] = (),
    ) -> None:
        """Add the jobs, disputes, jury cases and batches found below ``next_block`` and
        move the cursor there, atomically."""
        now = time.time()
        with self._db.conn:
            for b in batches:
                if not self._db["batches"].count_where("batch_id = ?", [b.batch_id]):
                    self._db["batches"].insert(
                        {"batch_id": b.batch_id, "block": b.block, "poster": b.poster,
                         "entries_hash": b.entries_hash, "status": BATCH_NEW, "updated_at": now}
                    )  # fmt: skip
            for d in disputes:
                if not self._db["disputes"].count_where("job_id = ?", [d.job_id]):
                    self._db["disputes"].insert(
                        {"job_id": d.job_id, "block": d.block, "challenger": d.challenger,
                         "hop": d.hop, "kind": d.kind, "updated_at": now}
                    )  # fmt: skip
            for c in cases:
                if not self._db["cases"].count_where(
                    "job_id = ? and round = ?", [c.job_id, c.round]
                ):
                    self._db["cases"].insert(
                        {"job_id": c.job_id, "round": c.round, "block": c.block,
                         "commit_ends_at": c.commit_ends_at, "reveal_ends_at": c.reveal_ends_at,
                         "status": DRAWN, "updated_at": now}
                    )  # fmt: skip
            for job in jobs:
                if self._db["jobs"].count_where("job_id = ?", [job.job_id]):
                    continue  # a re-scan after a crash between reads; the first draw stands
                self._db["jobs"].insert(
                    {
                        "job_id": job.job_id,
                        "block": job.block,
                        "submitter": job.submitter,
                        "commitment": job.commitment,
                        "random": job.random,
                        "selected": int(job.selected),
                        "status": SELECTED if job.selected else SKIPPED,
                        "seen_at": now,
                        "updated_at": now,
                    }
                )
            self._db["meta"].upsert({"key": "cursor", "value": str(next_block)}, pk="key")

    # -- batches ---------------------------------------------------------------------------

    def batches(self, *statuses: str) -> list[dict]:
        marks = ",".join("?" for _ in statuses)
        return list(
            self._db["batches"].rows_where(f"status in ({marks})", list(statuses), order_by="block")
        )

    def batch(self, batch_id: int) -> dict | None:
        rows = list(self._db["batches"].rows_where("batch_id = ?", [batch_id]))
        return rows[0] if rows else None

    def set_batch(self, batch_id: int, status: str, **fields: object) -> None:
        with self._db.conn:
            self._db["batches"].update(
                batch_id, {"status": status, "updated_at": time.time(), **fields}
            )

    def note_resubmitted(self, job_ids: Iterable[str]) -> None:
        with self._db.conn:
            for job_id in job_ids:
                self._db["resubmitted"].upsert({"job_id": job_id, "done": 0}, pk="job_id")

    def resubmitted(self) -> list[str]:
        return [r["job_id"] for r in self._db["resubmitted"].rows_where("done = 0")]

    def resubmission_handled(self, job_id: str) -> None:
        with self._db.conn:
            self._db["resubmitted"].update(job_id, {"done": 1})

    def where_batched(self, job_id: str) -> tuple[int, int, int] | None:
        """The batch, entry and leaf that first held the job."""
        rows = list(self._db["batched_jobs"].rows_where("job_id = ?", [job_id]))
        return (rows[0]["batch_id"], rows[0]["entry"], rows[0]["leaf"]) if rows else None

    def record_batch_jobs(
        self,
        batch_id: int,
        body: str,
        placed: Iterable[tuple[str, int, int]],
        drawn: Iterable[SeenJob],
    ) -> None:
        """A batch read and audited: its body, where each of its jobs sits (first place
        only), and the draw for each, in one transaction."""
        now = time.time()
        with self._db.conn:
            for job_id, entry, leaf in placed:
                if not self._db["batched_jobs"].count_where("job_id = ?", [job_id]):
                    self._db["batched_jobs"].insert(
                        {"job_id": job_id, "batch_id": batch_id, "entry": entry, "leaf": leaf}
                    )
            for job in drawn:
                if self._db["jobs"].count_where("job_id = ?", [job.job_id]):
                    continue
                self._db["jobs"].insert(
                    {"job_id": job.job_id, "block": job.block, "submitter": job.submitter,
                     "commitment": job.commitment, "random": job.random,
                     "selected": int(job.selected),
                     "status": SELECTED if job.selected else SKIPPED,
                     "batch_id": job.batch_id, "seen_at": now, "updated_at": now}
                )  # fmt: skip
            self._db["batches"].update(
                batch_id, {"status": BATCH_AUDITED, "body": body, "updated_at": now}
            )

    # -- job status ------------------------------------------------------------------------

    def set_status(self, job_id: str, status: str, **fields: object) -> None:
        self._update_status(job_id, status, {k: v for k, v in fields.items() if v is not None})

    # -- checks, evidence, challenges ------------------------------------------------------

    def record_check(
        self,
        job_id: str,
        hop: int,
        ok: bool,
        reason: str = "",
        *,
        step: int | None = None,
        position: int | None = None,
        score: float | None = None,
        worst_score: float | None = None,
        cpu_seconds: float | None = None,
        detail: str = "",
    ) -> None:
        with self._db.conn:
            self._db["checks"].insert(
                {
                    "job_id": job_id,
                    "hop": hop,
                    "ok": int(ok),
                    "reason": reason,
                    "step": step,
                    "position": position,
                    "score": score,
                    "worst_score": worst_score,
                    "cpu_seconds": cpu_seconds,
                    "detail": detail,
                    "at": time.time(),
                }
            )

    def checks(self, job_id: str) -> list[dict]:
        return list(self._db["checks"].rows_where("job_id = ?", [job_id], order_by="id"))

    def record_evidence(self, evidence: Evidence) -> str:
        """Keep the record a challenge's hash stands for; returns the hash (0x hex)."""
        digest = "0x" + evidence.digest().hex()
        with self._db.conn:
            self._db["evidence"].upsert(
                {"hash": digest, "job_id": evidence.job_id, "record": evidence.canonical()},
                pk="hash",
            )
        return digest

    def evidence(self, digest: str) -> dict | None:
        rows = list(self._db["evidence"].rows_where("hash = ?", [digest]))
        return json.loads(rows[0]["record"]) if rows else None

    def record_challenge(
        self, job_id: str, hop: int, evidence: str, tx: str | None, block: int | None
    ) -> None:
        """The challenge and the job's new status, in one transaction."""
        now = time.time()
        with self._db.conn:
            self._db["challenges"].upsert(
                {"job_id": job_id, "hop": hop, "evidence": evidence, "tx": tx, "block": block,
                 "at": now},
                pk="job_id",
            )  # fmt: skip
            self._db["jobs"].update(
                job_id,
                {"status": CHALLENGED, "hop": hop, "evidence": evidence, "challenge_tx": tx,
                 "updated_at": now},
            )  # fmt: skip

    def challenges(self) -> list[dict]:
        return list(self._db["challenges"].rows_where(order_by="at"))

    # -- disputes (anyone's) and jury cases (ours) -----------------------------------------

    def open_disputes(self) -> list[dict]:
        return list(self._db["disputes"].rows_where("outcome is null", order_by="block"))

    def end_dispute(self, job_id: str, outcome: str) -> None:
        """The dispute ended; our job row (if we opened it) takes the outcome too."""
        now = time.time()
        with self._db.conn:
            self._db["disputes"].update(job_id, {"outcome": outcome, "updated_at": now})
            rows = list(self._db["jobs"].rows_where("job_id = ? and status = ?",
                                                    [job_id, CHALLENGED]))  # fmt: skip
            if rows and outcome in (UPHELD, REJECTED):
                self._db["jobs"].update(job_id, {"status": outcome, "updated_at": now})

    def open_cases(self) -> list[Case]:
        marks = ",".join("?" for _ in CASE_OPEN)
        rows = self._db["cases"].rows_where(
            f"status in ({marks})", list(CASE_OPEN), order_by="commit_ends_at"
        )
        return [_case(r) for r in rows]

    def cases(self) -> list[Case]:
        return [_case(r) for r in self._db["cases"].rows_where(order_by="block")]

    def case(self, job_id: str, round_: int) -> Case:
        return _case(self._db["cases"].get((job_id, round_)))

    def record_vote(
        self, job_id: str, round_: int, uphold: bool, salt: bytes, reason: str, detail: str
    ) -> None:
        """Keep the vote and its salt; only then may the commitment be sent."""
        self._set_case(
            job_id, round_, JUDGED,
            uphold=int(uphold), salt="0x" + salt.hex(), reason=reason, detail=detail,
        )  # fmt: skip

    def set_case(self, job_id: str, round_: int, status: str, **fields: object) -> None:
        self._set_case(job_id, round_, status, **{k: v for k, v in fields.items() if v is not None})

    def _set_case(self, job_id: str, round_: int, status: str, **fields: object) -> None:
        with self._db.conn:
            self._db["cases"].update(
                (job_id, round_), {"status": status, "updated_at": time.time(), **fields}
            )

    @staticmethod
    def _parse(row: dict) -> LedgerJob:
        return _job(row)


def _case(row: dict) -> Case:
    uphold = row["uphold"]
    return Case(
        job_id=row["job_id"],
        round=row["round"],
        block=row["block"],
        commit_ends_at=row["commit_ends_at"],
        reveal_ends_at=row["reveal_ends_at"],
        status=row["status"],
        uphold=None if uphold is None else bool(uphold),
        salt=row["salt"],
        reason=row["reason"],
        outcome=row["outcome"],
    )


def _job(row: dict) -> LedgerJob:
    return LedgerJob(
        job_id=row["job_id"],
        block=row["block"],
        submitter=row["submitter"],
        commitment=row["commitment"],
        random=row["random"],
        selected=bool(row["selected"]),
        status=row["status"],
        hop=row["hop"],
        reason=row["reason"],
        evidence=row["evidence"],
        challenge_tx=row["challenge_tx"],
        batch_id=row.get("batch_id"),
    )
