"""API keys and their budgets: ``$SHAREDLLM_HOME/gateway/keys.db``.

The operator gives each key a budget in SHARE wei. Before a job is signed for a request,
its worst-case cost is *reserved* from the key's budget (a row in ``reservations``); when
the job ends its actual cost is *charged* and the reservation deleted, in one transaction.
Because the reservation lives in the database, a gateway that dies mid-answer still counts
the job against the key until ``reconcile`` learns from the chain what it really cost.

A key is ``sk-sharedllm-<id>-<secret>``; only the sha256 of the secret is stored, and the
hashes are compared in constant time. Amounts are decimal text: wei overflow SQLite's
64-bit integers.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from sharedllm import paths
from sharedllm.chain.amounts import format_share
from sharedllm.errors import AccessError, BudgetError, ConfigError

KEY_PREFIX = "sk-sharedllm-"
_KEY = re.compile(r"^sk-sharedllm-([0-9a-f]{12})-([A-Za-z0-9_-]{20,100})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
BUSY_TIMEOUT_S = 10.0


def default_path() -> Path:
    return paths.home() / "gateway" / "keys.db"


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    budget: int  # SHARE wei the operator allows this key to spend in total
    spent: int  # charged for finished jobs
    reserved: int  # held for jobs still running (worst case)
    created_at: float
    revoked_at: float | None = None

    @property
    def remaining(self) -> int:
        return self.budget - self.spent - self.reserved

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Reservation:
    reservation_id: int
    key_id: str
    amount: int
    job_id: str | None
    deadline: int | None  # the job's on-chain deadline, once it is signed


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeys:
    """Safe to share between threads and with ``sharedllm serve keys`` in another process."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None
        )
        db = sqlite_utils.Database(self._conn)
        db.enable_wal()
        db["keys"].create(
            {"key_id": str, "name": str, "secret_sha256": str, "budget": str, "spent": str,
             "created_at": float, "revoked_at": float},
            pk="key_id", not_null={"name", "secret_sha256", "budget", "spent"},
            if_not_exists=True,
        )  # fmt: skip
        db["keys"].create_index(["name"], unique=True, if_not_exists=True)
        db["reservations"].create(
            {"id": int, "key_id": str, "amount": str, "job_id": str, "deadline": int,
             "created_at": float},
            pk="id", not_null={"key_id", "amount"}, if_not_exists=True,
        )  # fmt: skip
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so two processes cannot both spend a budget."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- operator ----------------------------------------------------------------------------

    def add(self, name: str, budget: int) -> tuple[ApiKey, str]:
        """A new key with ``budget`` wei; returns it and the secret key text (shown once)."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(
                "name: 1-64 characters of letters, digits and _.@- (starting with a letter "
                "or digit)",
                field="name",
            )
        if budget < 0:
            raise ConfigError("budget: must not be negative", field="budget")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM keys WHERE name = ?", (name,)).fetchone():
                raise ConfigError(f"name: a key named {name!r} already exists", field="name")
            conn.execute(
                "INSERT INTO keys (key_id, name, secret_sha256, budget, spent, created_at) "
                "VALUES (?, ?, ?, ?, '0', ?)",
                (key_id, name, _hash(secret), str(budget), time.time()),
            )
        return self.get(name), f"{KEY_PREFIX}{key_id}-{secret}"

    def revoke(self, name: str) -> ApiKey:
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                (time.time(), name),
            )
            if cur.rowcount == 0:
                self._key_row(conn, "name", name)  # unknown name: its own error
        return self.get(name)

    def get(self, name: str) -> ApiKey:
        with self._lock:
            return self._key(self._key_row(self._conn, "name", name))

    def list(self) -> list[ApiKey]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM keys ORDER BY created_at, name").fetchall()
            return [self._key(self._with_reserved(row)) for row in rows]

    # -- requests ----------------------------------------------------------------------------

    def authenticate(self, presented: str | None) -> ApiKey:
        """The active key behind ``Authorization: Bearer <key>``, or AccessError."""
        if not presented:
            raise AccessError("no API key: send the header 'Authorization: Bearer <key>'")
        match = _KEY.match(presented)
        with self._lock:
            row = (
                self._conn.execute("SELECT * FROM keys WHERE key_id = ?", (match[1],)).fetchone()
                if match
                else None
            )
            if row is not None:
                row = self._with_reserved(row)
        # Compare a hash either way, so an unknown id costs the same time as a wrong secret.
        stored = row[2] if row else "0" * 64
        ok = hmac.compare_digest(stored, _hash(match[2] if match else presented))
        if row is None or not ok:
            raise AccessError("the API key is not known to this gateway")
        key = self._key(row)
        if not key.active:
            raise AccessError(f"the API key {key.name!r} was revoked", code="KEY_REVOKED")
        return key

    def reserve(self, key_id: str, amount: int) -> int:
        """Hold ``amount`` wei of the key's budget; BudgetError (nothing held) if it is short."""
        with self._write() as conn:
            key = self._key(self._key_row(conn, "key_id", key_id))
            if not key.active:
                raise AccessError(f"the API key {key.name!r} was revoked", code="KEY_REVOKED")
            if amount > key.remaining:
                raise BudgetError(
                    f"the API key {key.name!r} has {format_share(key.remaining)} SHARE of its "
                    f"budget left; this request may cost up to {format_share(amount)} SHARE "
                    "(lower max_tokens, or ask the gateway operator for more budget)",
                    key=key.name,
                    remaining=key.remaining,
                    need=amount,
                )
            cur = conn.execute(
                "INSERT INTO reservations (key_id, amount, created_at) VALUES (?, ?, ?)",
                (key_id, str(amount), time.time()),
            )
            return int(cur.lastrowid)

    def attach(self, reservation_id: int, job_id: str, deadline: int) -> None:
        """Name the signed job a reservation holds budget for (``reconcile`` needs it)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE reservations SET job_id = ?, deadline = ? WHERE id = ?",
                (job_id, deadline, reservation_id),
            )

    def settle(self, reservation_id: int, cost: int) -> None:
        """Charge the job's actual cost and let go of the rest; settling twice does nothing."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT key_id FROM reservations WHERE id = ?", (reservation_id,)
            ).fetchone()
            if row is None:
                return
            spent = conn.execute("SELECT spent FROM keys WHERE key_id = ?", (row[0],)).fetchone()
            conn.execute(
                "UPDATE keys SET spent = ? WHERE key_id = ?", (str(int(spent[0]) + cost), row[0])
            )
            conn.execute("DELETE FROM reservations WHERE id = ?", (reservation_id,))

    def reservations(self) -> list[Reservation]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, key_id, amount, job_id, deadline FROM reservations ORDER BY id"
            ).fetchall()
        return [Reservation(r[0], r[1], int(r[2]), r[3], r[4]) for r in rows]

    # -- rows --------------------------------------------------------------------------------

    def _key_row(self, conn: sqlite3.Connection, column: str, value: str) -> tuple:
        row = conn.execute(f"SELECT * FROM keys WHERE {column} = ?", (value,)).fetchone()
        if row is None:
            raise ConfigError(f"name: no API key named {value!r}", field="name")
        return self._with_reserved(row, conn)

    def _with_reserved(self, row: tuple, conn: sqlite3.Connection | None = None) -> tuple:
        held = (conn or self._conn).execute(
            "SELECT amount FROM reservations WHERE key_id = ?", (row[0],)
        )
        return (*row, sum(int(a) for (a,) in held))

    @staticmethod
    def _key(row: tuple) -> ApiKey:
        key_id, name, _, budget, spent, created_at, revoked_at, reserved = row
        return ApiKey(key_id, name, int(budget), int(spent), reserved, created_at, revoked_at)
