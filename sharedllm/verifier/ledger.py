"""The verifier's ledger: where it is in the chain, every job it saw, every check and challenge.

It is the verifier's memory across restarts. The cursor and the jobs found below it move in
one transaction, so a crash can neither skip a job nor see one twice. A selected job is
marked ``checking`` before any work and ``passed``/``challenged``/``missed`` after; a
restarted verifier re-does every job still ``checking``, asking the chain first whether its
challenge already landed, so it never sends a second challenge transaction.
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
CHALLENGED = "challenged"  # our challenge is on-chain
MISSED = "missed"  # could not be checked in time (the reason says why)
STATUSES = (SKIPPED, SELECTED, CHECKING, PASSED, CHALLENGED, MISSED)
OPEN = (SELECTED, CHECKING)


def ledger_path(address: str) -> Path:
    return paths.home() / "verifiers" / address / "ledger.db"


@dataclass(frozen=True)
class SeenJob:
    """A ``ResultSubmitted`` event and this verifier's draw for it."""

    job_id: str
    block: int
    submitter: str
    commitment: str
    random: str
    selected: bool


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
        if not db["challenges"].exists():
            db["challenges"].create(
                {"job_id": str, "hop": int, "evidence": str, "tx": str, "block": int, "at": float},
                pk="job_id",
            )

    # -- the cursor and the jobs below it --------------------------------------------------

    def cursor(self, default: int) -> int:
        rows = list(self._db["meta"].rows_where("key = ?", ["cursor"]))
        return int(rows[0]["value"]) if rows else default

    def record_seen(self, jobs: Iterable[SeenJob], next_block: int) -> None:
        """Add the jobs found below ``next_block`` and move the cursor there, atomically."""
        now = time.time()
        with self._db.conn:
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

    @staticmethod
    def _parse(row: dict) -> LedgerJob:
        return _job(row)


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
    )
