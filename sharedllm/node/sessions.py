"""Open inference sessions on one node: their caches, their step history, and the caps.

Each session keeps every step's input and output bytes. The outputs let the client rebuild a
failed next hop (they are that hop's inputs) and the pair of them is the transcript a verifier
asks for later. The memory this takes is bounded: a session reserves room for ``max_length``
positions when it opens, and a node refuses sessions beyond its cache budget; on a free
node, a client below its fair share may reclaim idle sessions of one above it
(``fair_share.py``).

A session's clock runs from its last step: reading its state or history does not keep it
open. At most ``MAX_WAITING`` requests wait on one session at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sharedllm.errors import (
    ContextTooLong,
    SessionError,
    SessionLimit,
    SessionReclaimed,
    SessionUnknown,
)
from sharedllm.node import fair_share
from sharedllm.node.config import NodeConfig
from sharedllm.node.span_worker import SpanWorker
from sharedllm.protocol import step_deadline
from sharedllm.protocol.session_msgs import Hop, OpenSession, RouteUpdate

# Requests that may wait on one session's lock at once: an honest route has one step in
# flight per session, and a resend after a failover may overlap it.
MAX_WAITING = 4
RECLAIMED_KEPT = 1024  # ids of reclaimed sessions remembered, to answer SESSION_RECLAIMED


@dataclass
class StepRecord:
    start_pos: int
    length: int
    input: bytes
    output: bytes
    receipts: list[str] = field(default_factory=list)  # paid jobs: hops 0..this, hex


@dataclass
class Session:
    request: OpenSession
    cache: Any
    reserved_bytes: int
    client: str = ""  # the address that opened it
    runner: Any = None  # the part of the node's span this session runs (the worker's ``part``)
    opened_at: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    steps: list[StepRecord] = field(default_factory=list)
    route: tuple[Hop, ...] = ()
    next_url: str | None = None
    hop_index: int = 0
    closed: bool = False
    reclaimed: bool = False  # closed to make room for a client below its fair share
    waiting: int = 0  # requests in or waiting for ``turn()``
    delivered_steps: int = 0  # the last hop: leading steps whose output reached the client
    busy_steps: int = 0  # step requests being run or pushed on to the next hop right now
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def id(self) -> str:
        return self.request.session_id

    @property
    def position(self) -> int:
        return sum(s.length for s in self.steps)

    def served_steps(self) -> list[StepRecord]:
        """The steps a job may charge for. At the last hop, those whose output was handed to
        the client: a step computed but never delivered (the client left, or could not take
        it) is not paid for. At an earlier hop, every step it ran; only the last hop submits."""
        return self.steps if self.next_url is not None else self.steps[: self.delivered_steps]

    def touch(self) -> None:
        """A step ran: the session is in use."""
        self.last_used = time.monotonic()

    def idle_for(self, now: float) -> float:
        """Seconds since its last step; 0 while a request is in or waiting for ``turn()``."""
        return 0.0 if self.waiting else now - self.last_used

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold the session's lock, as one of at most ``MAX_WAITING`` requests waiting."""
        if self.waiting >= MAX_WAITING:
            raise SessionLimit(
                f"session {self.id} already has {MAX_WAITING} requests waiting",
                code="SESSION_BUSY",
            )
        self.waiting += 1
        try:
            async with self.lock:
                if self.closed:  # closed while this request waited
                    raise self.gone()
                yield
        finally:
            self.waiting -= 1

    def gone(self) -> SessionUnknown:
        """The error for a request that finds this session closed."""
        if self.reclaimed:
            return SessionReclaimed(
                f"session {self.id} was closed to make room for another client: open it again",
                session_id=self.id,
            )
        return SessionUnknown(f"session {self.id} was closed", session_id=self.id)


class SessionManager:
    def __init__(self, worker: SpanWorker, config: NodeConfig) -> None:
        self.worker = worker
        self.config = config
        self._sessions: dict[str, Session] = {}
        self._reclaimed: OrderedDict[str, None] = OrderedDict()
        # Per position: the span's KV cache plus one input and one output row of history.
        self.bytes_per_token = self._bytes_per_position(worker.end - worker.start)

    def use(self, worker: SpanWorker) -> None:
        """Serve new sessions with ``worker`` (the node moved; no session is open)."""
        self.worker = worker
        self.bytes_per_token = self._bytes_per_position(worker.end - worker.start)

    @property
    def open_count(self) -> int:
        return len(self._sessions)

    def reserved_bytes(self) -> int:
        return sum(s.reserved_bytes for s in self._sessions.values())

    def free_tokens(self) -> int:
        free = self.config.cache_budget_bytes - self.reserved_bytes()
        return max(0, free // self.bytes_per_token)

    def open(self, request: OpenSession, client: str = "", per_client: bool = False) -> Session:
        """``per_client``: hold this client to ``config.per_client_limit`` free sessions."""
        self._check(request, client, per_client)
        need = self._need(request)
        refusal = self._room_refusal(request, need)
        if refusal is not None:
            raise refusal
        runner = self.worker.part(request.hop.start, request.hop.end)
        session = Session(request, runner.new_cache(), need, client, runner=runner)
        self.repoint(session, RouteUpdate(request.route, request.hop_index))
        self._sessions[session.id] = session
        self._reclaimed.pop(session.id, None)
        return session

    async def make_room(self, request: OpenSession, client: str) -> list[Session]:
        """Before a free ``open``: if it would not fit, close the idle sessions of clients
        above their fair share that make it fit (``fair_share.to_reclaim``); returns them."""
        self._check(request, client, per_client=True)
        need = self._need(request)
        if self._room_refusal(request, need) is None:
            return []
        now = time.monotonic()
        holdings = [
            fair_share.Holding(s.id, s.client, s.reserved_bytes, s.idle_for(now))
            for s in self._sessions.values()
        ]
        capacity = fair_share.Capacity(self.config.cache_budget_bytes, self.config.max_sessions)
        ids = fair_share.to_reclaim(holdings, client, need, capacity, self.config.reclaim_idle_s)
        closed = [await self.close(sid, reclaimed=True) for sid in ids]
        return [s for s in closed if s is not None]

    def _bytes_per_position(self, layers: int) -> int:
        return self.worker.kv_bytes_per_token(layers) + 2 * self.worker.hidden_size * 4

    def _need(self, request: OpenSession) -> int:
        """What a session holds at most: its positions through the layers it runs here."""
        return request.max_length * self._bytes_per_position(request.hop.end - request.hop.start)

    def _check(self, request: OpenSession, client: str, per_client: bool) -> None:
        if request.session_id in self._sessions:
            raise SessionError(
                f"session {request.session_id} is already open here",
                code="SESSION_EXISTS",
                field="session_id",
            )
        context = self.worker.manifest.context_length
        if context is not None and request.max_length > context:
            raise ContextTooLong(
                f"max_length {request.max_length} is past the model's context of {context}",
                field="max_length",
            )
        if per_client:
            held = sum(1 for s in self._sessions.values() if s.client == client)
            if held >= self.config.per_client_limit:
                raise SessionLimit(
                    f"{client} already holds {held} sessions here, this node's limit per client",
                    retry_after_s=self.config.retry_after_s,
                )

    def _room_refusal(self, request: OpenSession, need: int) -> SessionLimit | None:
        retry = {"retry_after_s": self.config.retry_after_s}
        if len(self._sessions) >= self.config.max_sessions:
            return SessionLimit(
                f"node is at its cap of {self.config.max_sessions} sessions", **retry
            )
        if need > self.config.cache_budget_bytes - self.reserved_bytes():
            return SessionLimit(
                f"max_length {request.max_length} does not fit the free cache "
                f"({self.free_tokens()} positions)",
                field="max_length",
                **retry,
            )
        return None

    def get(self, session_id: str) -> Session:
        session = self._sessions.get(session_id)
        if session is None or session.closed:
            if session_id in self._reclaimed:
                raise SessionReclaimed(
                    f"session {session_id} was closed to make room for another client: "
                    "open it again",
                    session_id=session_id,
                    retry_after_s=self.config.retry_after_s,
                )
            raise SessionUnknown(f"no open session {session_id}", session_id=session_id)
        return session

    def repoint(self, session: Session, update: RouteUpdate) -> None:
        nxt = update.hop_index + 1
        session.next_url = update.route[nxt].url if nxt < len(update.route) else None
        session.hop_index = update.hop_index
        session.route = update.route

    def push_budget(
        self, session: Session, received_s: float | None, spent_s: float
    ) -> tuple[float, float]:
        """The budget to hand the next hop with a step (``step_deadline``), and how long to
        wait for it. This node allows a step its ``--step-timeout`` plus a margin per hop
        after this one, and less when the step's budget says so."""
        after = len(session.route) - session.hop_index - 1
        own = self.config.step_timeout_s + step_deadline.HOP_MARGIN_S * after
        received = own if received_s is None else min(received_s, own)
        handed = step_deadline.next_budget(received, spent_s)
        return handed, step_deadline.wait_for(handed)

    @property
    def poll_timeout(self) -> float:
        """How long a client's long-poll for a step's output may wait here."""
        return self.config.step_timeout_s + step_deadline.HOP_MARGIN_S

    async def close(self, session_id: str, reclaimed: bool = False) -> Session | None:
        session = self._sessions.pop(session_id, None)
        if session is not None:
            session.closed = True
            if reclaimed:
                session.reclaimed = True
                self._reclaimed[session_id] = None
                while len(self._reclaimed) > RECLAIMED_KEPT:
                    self._reclaimed.popitem(last=False)
            self.worker.forget(session.cache)
            async with session.changed:
                session.changed.notify_all()  # wake long-polls so they answer "closed"
        return session

    def expired(self) -> list[str]:
        now = time.monotonic()
        return [
            sid
            for sid, s in self._sessions.items()
            if s.idle_for(now) > self.config.idle_timeout_s
            or now - s.opened_at > self.config.session_ttl_s
            or (
                not s.steps
                and not s.waiting
                and now - s.opened_at > self.config.unstepped_timeout_s
            )
        ]

    async def close_all(self) -> None:
        for sid in list(self._sessions):
            await self.close(sid)
