"""Which waiting one-token steps run together as one batch on the span worker.

Steps of different sessions queue here as they arrive. The worker takes a batch when it is
free: the steps waiting, oldest first, up to ``max_rows`` and up to ``max_positions``
gathered cache positions (rows times the longest cache, the size of the one copy a batch
costs). Steps left over go in the next batch, before any step that arrived after them, so
no session starves.

Sessions decoding at the same time rarely reach a node at the same moment: their tokens
are spread over the route's round. So before it takes a batch, the worker waits a little
(at most ``wait_s`` after the oldest waiting step arrived) for the other sessions that are
decoding here, those that ran a one-token step within ``ACTIVE_S``. Once batched together,
sessions stay in step and arrive together, so the wait is paid while they fall into step,
not on every token. A session alone on the node waits for nobody.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_ROWS = 16
DEFAULT_MAX_POSITIONS = 32768
DEFAULT_WAIT_MS = 60.0
ACTIVE_S = 2.0  # a session that ran a one-token step this recently is expected again


@dataclass
class PendingStep:
    cache: Any
    data: bytes
    start_pos: int
    # Called on the worker thread with (output bytes, None) or (None, the error).
    settle: Callable[[bytes | None, BaseException | None], None]
    queued_at: float = field(default_factory=time.monotonic)
    runner: Any = None  # the part of the span the step runs through (None: all of it)


@dataclass
class BatchQueue:
    max_rows: int = DEFAULT_MAX_ROWS
    max_positions: int = DEFAULT_MAX_POSITIONS
    wait_s: float = DEFAULT_WAIT_MS / 1000.0
    _pending: list[PendingStep] = field(default_factory=list)
    _recent: dict[int, float] = field(default_factory=dict)  # id(cache) -> last one-token step
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _scheduled: bool = False

    def __post_init__(self) -> None:
        if self.max_rows < 1 or self.max_positions < 1 or self.wait_s < 0:
            raise ValueError("a batch needs room for a row and a position, and a wait >= 0")

    def __len__(self) -> int:
        with self._cond:
            return len(self._pending)

    def put(self, step: PendingStep) -> bool:
        """Queue a step; True when the caller must schedule a take on the worker (no take
        is scheduled yet), so that exactly one take waits in the worker's queue at a time."""
        with self._cond:
            self._pending.append(step)
            first = not self._scheduled
            self._scheduled = True
            self._cond.notify()
            return first

    def take(self) -> tuple[list[PendingStep], bool]:
        """The next batch, and whether steps remain for another take. Blocks for at most
        ``wait_s`` while sessions decoding here have not yet sent their step."""
        with self._cond:
            if self._pending:
                deadline = self._pending[0].queued_at + self.wait_s
                while self._missing() and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
            batch = self._select()
            del self._pending[: len(batch)]
            now = time.monotonic()
            for step in batch:
                self._recent[id(step.cache)] = now
            more = bool(self._pending)
            self._scheduled = more
            return batch, more

    def forget(self, cache: Any) -> None:
        """A session closed: do not wait for it again."""
        with self._cond:
            self._recent.pop(id(cache), None)

    def drain(self) -> list[PendingStep]:
        """Every waiting step, removed (the worker is shutting down)."""
        with self._cond:
            steps, self._pending = self._pending, []
            self._scheduled = False
            return steps

    def _missing(self) -> bool:
        """Whether a session decoding here lately has no step waiting, and there is room."""
        if len(self._pending) >= self.max_rows:
            return False
        now = time.monotonic()
        for key, when in list(self._recent.items()):
            if now - when > ACTIVE_S:
                del self._recent[key]
        waiting = {id(step.cache) for step in self._pending}
        return any(key not in waiting for key in self._recent)

    def _select(self) -> list[PendingStep]:
        batch: list[PendingStep] = []
        longest = 0
        for step in self._pending:
            if len(batch) == self.max_rows:
                break
            grown = max(longest, step.start_pos + 1)
            if batch and (len(batch) + 1) * grown > self.max_positions:
                break
            batch.append(step)
            longest = grown
        return batch
