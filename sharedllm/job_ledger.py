"""What the node's and the verifier's ledgers share: a durable sqlite file with a ``jobs``
table, read by job id and by status, whose rows each ledger turns into its own record."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import sqlite_utils

T = TypeVar("T")


class JobLedger(Generic[T]):
    STATUSES: ClassVar[tuple[str, ...]]
    ORDER: ClassVar[str]  # the order in which ``with_status`` and ``all`` list jobs

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # The event loop writes here and so do worker threads; every write is one short
        # transaction, and sqlite serialises writers itself. WAL with a full sync at every
        # commit: a row the caller saw written survives a crash or a power cut.
        self._db = sqlite_utils.Database(sqlite3.connect(path, check_same_thread=False))
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._create()

    def _create(self) -> None:
        raise NotImplementedError

    @staticmethod
    def _parse(row: dict[str, Any]) -> T:
        raise NotImplementedError

    def _update_status(self, job_id: str, status: str, values: dict[str, Any]) -> None:
        if status not in self.STATUSES:
            raise ValueError(f"unknown ledger status {status!r}")
        with self._db.conn:
            self._db["jobs"].update(job_id, {"status": status, "updated_at": time.time(), **values})

    def get(self, job_id: str) -> T | None:
        rows = list(self._db["jobs"].rows_where("job_id = ?", [job_id]))
        return self._parse(rows[0]) if rows else None

    def with_status(self, *statuses: str) -> Iterator[T]:
        marks = ",".join("?" for _ in statuses)
        for row in self._db["jobs"].rows_where(
            f"status in ({marks})", list(statuses), order_by=self.ORDER
        ):
            yield self._parse(row)

    def all(self) -> list[T]:
        return [self._parse(row) for row in self._db["jobs"].rows_where(order_by=self.ORDER)]

    def close(self) -> None:
        self._db.close()
