"""The client's own record of the jobs it signed: ``$SHAREDLLM_HOME/client/jobs.db``.

The chain only learns of a job when a node submits it, so a job that was signed but never
submitted (a node failed, the client stopped) exists nowhere else. Each write is one
transaction keyed by the job id, so recording the same event twice (a retry, a restart
half-way) changes nothing. Amounts are stored as decimal text: wei overflow SQLite's
64-bit integers.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.db import NotFoundError

from sharedllm import paths
from sharedllm.errors import ConfigError, ProtocolError
from sharedllm.protocol.job import Job
from sharedllm.protocol.session_msgs import parse_url
from sharedllm.protocol.types import JobId, parse_job_id, parse_uint

PREVIEW_CHARS = 200
BUSY_TIMEOUT_S = 10.0
_COLUMNS = {
    "job_id": str,
    "client": str,
    "job_json": str,
    "signature": str,
    "route_urls": str,
    "max_cost": str,
    "market": str,
    "signed_at": float,
    "tokens": int,
    "cost": str,
    "text_preview": str,
    "served_at": float,
}


def default_path() -> Path:
    return paths.home() / "client" / "jobs.db"


@dataclass(frozen=True)
class BookedJob:
    job_id: JobId
    job: Job
    signature: str
    route_urls: tuple[str, ...]
    max_cost: int
    signed_at: float
    market: str | None = None
    tokens: int | None = None
    cost: int | None = None
    text_preview: str | None = None
    served_at: float | None = None

    @property
    def status(self) -> str:
        """What the client itself knows: ``served`` once the answer came back, else ``signed``."""
        return "served" if self.served_at is not None else "signed"


class JobBook:
    """Safe to share between threads and processes (SQLite WAL, one lock per book)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
        self._db = sqlite_utils.Database(conn)
        self._db.enable_wal()
        self._jobs = self._db.table("jobs")
        self._jobs.create(_COLUMNS, pk="job_id", not_null={"client"}, if_not_exists=True)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> JobBook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record_signed(
        self,
        job_id: str,
        job_json: Mapping[str, Any] | Job,
        signature: bytes | str,
        route_urls: Sequence[str],
        max_cost: int,
        *,
        market: str | None = None,
    ) -> BookedJob:
        """Remember a job before it is sent; recording the same job again is a no-op."""
        jid = parse_job_id(job_id, "job_id")
        job = job_json if isinstance(job_json, Job) else Job.from_json(dict(job_json))
        row = {
            "job_id": jid,
            "client": job.client,
            "job_json": _dumps(job.to_json()),
            "signature": _signature_hex(signature),
            "route_urls": _dumps([parse_url(u, "route_urls") for u in route_urls]),
            "max_cost": str(parse_uint(max_cost, "max_cost")),
            "market": market,
            "signed_at": time.time(),
        }
        with self._lock:
            # Insert-or-ignore, then compare: race-free against another process doing the same.
            self._jobs.insert(row, ignore=True)
            existing = self._row(jid)
            assert existing is not None
            if (existing["job_json"], existing["signature"]) != (
                row["job_json"],
                row["signature"],
            ):
                raise ConfigError(
                    f"job_id: {jid} is already recorded with a different job or signature",
                    field="job_id",
                )
        return self.get(jid)

    def record_served(
        self, job_id: str, tokens: int, cost: int, text_preview: str = ""
    ) -> BookedJob:
        """The answer came back: tokens served and what the route may charge for them."""
        jid = parse_job_id(job_id, "job_id")
        updates = {
            "tokens": parse_uint(tokens, "tokens", 32),
            "cost": str(parse_uint(cost, "cost")),
            "text_preview": text_preview[:PREVIEW_CHARS],
        }
        with self._lock:
            existing = self._row(jid)
            if existing is None:
                raise ConfigError(f"job_id: {jid} was never recorded as signed", field="job_id")
            # The first time it was served stays the time shown; a retry only refreshes figures.
            updates["served_at"] = existing["served_at"] or time.time()
            self._jobs.update(jid, updates)
        return self.get(jid)

    def get(self, job_id: str) -> BookedJob:
        jid = parse_job_id(job_id, "job_id")
        row = self._row(jid)
        if row is None:
            raise ConfigError(f"job_id: {jid} is not in the job book", field="job_id")
        return _booked(row)

    def list(self, client: str | None = None) -> list[BookedJob]:
        """Jobs in the order they were signed, optionally of one client address."""
        where, args = ("client = ?", [client]) if client else (None, [])
        rows = self._jobs.rows_where(where, args, order_by="signed_at, job_id")
        return [_booked(r) for r in rows]

    def _row(self, job_id: str) -> dict[str, Any] | None:
        try:
            return self._jobs.get(job_id)
        except NotFoundError:
            return None


def _booked(row: dict[str, Any]) -> BookedJob:
    try:
        job = Job.from_json(json.loads(row["job_json"]))
        urls = tuple(json.loads(row["route_urls"]))
    except (ValueError, ProtocolError) as exc:
        raise ConfigError(f"job book: row {row['job_id']} is corrupt ({exc})") from None
    return BookedJob(
        job_id=JobId(row["job_id"]),
        job=job,
        signature=row["signature"],
        route_urls=urls,
        max_cost=int(row["max_cost"]),
        signed_at=row["signed_at"],
        market=row["market"],
        tokens=row["tokens"],
        cost=int(row["cost"]) if row["cost"] is not None else None,
        text_preview=row["text_preview"],
        served_at=row["served_at"],
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _signature_hex(signature: bytes | str) -> str:
    if isinstance(signature, bytes):
        return "0x" + signature.hex()
    text = signature.lower()
    body = text.removeprefix("0x")
    if not body or len(body) % 2 or any(c not in "0123456789abcdef" for c in body):
        raise ConfigError("signature: expected bytes or 0x-prefixed hex", field="signature")
    return "0x" + body
