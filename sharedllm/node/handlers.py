"""HTTP in, protocol objects out: the node's endpoints (see docs/PROTOCOL.md).

Handlers only parse, call the work in ``steps``/``sessions``, and serialize. Every refusal is a
``SharedLLMError`` turned into a JSON body by ``error_middleware``, so one bad request never
disturbs another session.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from sharedllm import __version__
from sharedllm.errors import (
    ModelError,
    NodeMoving,
    PeerError,
    ProtocolError,
    SessionForbidden,
    SharedLLMError,
    SpanNotServed,
    WrongModel,
)
from sharedllm.model.store import ModelStore
from sharedllm.node import steps
from sharedllm.node.admission import Admission
from sharedllm.node.bodies import read_frame, read_json
from sharedllm.node.config import NodeConfig
from sharedllm.node.sessions import Session, SessionManager
from sharedllm.node.span_worker import SpanWorker
from sharedllm.peers import server_errors
from sharedllm.peers.client_address import client_of
from sharedllm.peers.http import PeerClient
from sharedllm.peers.stall_watch import watched
from sharedllm.protocol import frames, session_keys, step_deadline
from sharedllm.protocol.frames import TensorFrame
from sharedllm.protocol.node_info import NodeInfo
from sharedllm.protocol.receipt_handoff import parse_handoff
from sharedllm.protocol.receipts import RECEIPT_BYTES
from sharedllm.protocol.session_keys import key_matches
from sharedllm.protocol.session_msgs import (
    MAX_STEP_POSITIONS,
    parse_amend,
    parse_open,
    parse_receipts_meta,
    parse_route_update,
    parse_session_id,
)

log = logging.getLogger("sharedllm.node")
_SHARD = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class NodeState:
    config: NodeConfig
    store: ModelStore
    worker: SpanWorker
    sessions: SessionManager
    admission: Admission
    peers: PeerClient
    # The client behind a connection a relay handed over, by the connection's transport
    # (``PeerConnectionCap.relayed_client``); None for a direct connection.
    relayed_client: Callable[[object], str | None] = lambda _: None
    # The span the node is moving to (``node/rebalancer.py``): shown at /info, and no new
    # session opens meanwhile, so the old span's sessions can finish.
    moving_to: tuple[int, int] | None = None


STATE = web.AppKey("state", NodeState)


def _error(exc: SharedLLMError) -> web.Response:
    retry = exc.details.get("retry_after_s")
    headers = {"Retry-After": str(retry)} if isinstance(retry, int) else None
    return web.json_response(exc.to_json(), status=exc.http_status, headers=headers)


error_middleware = server_errors.error_middleware("node", _error)


def _frame_response(frame: TensorFrame) -> web.Response:
    return web.Response(body=frames.encode(frame), content_type=frames.CONTENT_TYPE)


def _frame_limit(st: NodeState, positions: int) -> int:
    """The largest frame of ``positions`` hidden states: float32 rows, plus the header and
    its prefix (and never more than the operator's --max-body-mb)."""
    frame = positions * st.worker.hidden_size * 4 + frames.MAX_HEADER_BYTES + 64
    return min(frame, st.config.client_max_size)


async def info(request: web.Request) -> web.Response:
    st = request.app[STATE]
    m = st.worker.manifest
    body = NodeInfo(
        version=__version__,
        model_id=m.model_id,
        precision=m.dtype,
        hardware=st.worker.hardware,
        start=st.worker.start,
        end=st.worker.end,
        num_layers=m.num_layers,
        hidden_size=m.hidden_size,
        sessions_open=st.sessions.open_count,
        sessions_max=st.config.max_sessions,
        free_cache_tokens=st.sessions.free_tokens(),
        ms_per_token=round(st.worker.ms_per_token, 3),
        queued_steps=st.worker.queued_steps,
        max_batch=st.worker.max_batch,
        batch_rows=round(st.worker.batch_rows, 2),
        batched_steps=st.worker.batched_steps,
        price=st.config.price,
        public_key=st.config.public_key,
        address=st.config.address,
        moving_to=st.moving_to,
        tokens_per_s=round(st.worker.tokens_per_s, 2),
    ).to_json()
    return web.json_response(body)


async def shard(request: web.Request) -> web.StreamResponse:
    digest = request.match_info["digest"]
    store = request.app[STATE].store
    if not _SHARD.match(digest) or not store.has_shard(digest):
        raise ModelError(f"no shard {digest} here", code="SHARD_MISSING", shard=digest)
    return web.FileResponse(store.shard_path(digest))


async def manifest(request: web.Request) -> web.Response:
    st = request.app[STATE]
    data = st.store.manifest_bytes(request.match_info["model_id"])
    return web.Response(body=data, content_type="application/json")


async def open_session(request: web.Request) -> web.Response:
    st = request.app[STATE]
    req = parse_open(await read_json(request))
    if req.model_id != st.worker.manifest.model_id:
        raise WrongModel(
            f"this node serves model {st.worker.manifest.model_id}, not {req.model_id}",
            field="model_id",
        )
    if not st.worker.start <= req.hop.start < req.hop.end <= st.worker.end:
        raise SpanNotServed(
            f"this node serves layers {st.worker.start}:{st.worker.end}, "
            f"which do not hold {req.hop.start}:{req.hop.end}",
            field=f"route[{req.hop_index}]",
        )
    if st.moving_to is not None:
        raise NodeMoving(
            f"this node is moving from layers {st.worker.start}:{st.worker.end} to "
            f"{st.moving_to[0]}:{st.moving_to[1]} and opens no session until it has",
            retry_after_s=st.config.retry_after_s,
        )
    await st.admission.admit(req)
    client = client_of(st.relayed_client(request.transport) or request.remote or "")
    per_client = st.admission.limits_per_client
    try:
        if per_client:
            for gone in await st.sessions.make_room(req, client):
                log.info("reclaimed idle session %s of %s for %s", gone.id, gone.client, client)
                await st.admission.closed(gone.request, gone.served_steps())
        session = st.sessions.open(req, client, per_client=per_client)
    except SharedLLMError:
        await st.admission.closed(req)  # give back what admission reserved for it
        raise
    return web.json_response(
        {
            "session_id": session.id,
            "span": [st.worker.start, st.worker.end],
            "idle_timeout_s": st.config.idle_timeout_s,
        }
    )


def _own_session(request: web.Request) -> Session:
    """The session, for a request only its client may make: it must carry the hop's key."""
    session = request.app[STATE].sessions.get(parse_session_id(request.match_info["sid"]))
    if not key_matches(request.headers.get(session_keys.HEADER), session.request.control):
        raise SessionForbidden(
            f"only the client that opened session {session.id} may do this "
            f"(send its key for this hop in {session_keys.HEADER})"
        )
    return session


async def session_state(request: web.Request) -> web.Response:
    s = _own_session(request)
    return web.json_response(
        {
            "session_id": s.id,
            "steps": len(s.steps),
            "position": s.position,
            "next": s.next_url,
            "busy_steps": s.busy_steps,
        }
    )


async def close_session(request: web.Request) -> web.Response:
    st = request.app[STATE]
    sid = _own_session(request).id
    session = await st.sessions.close(sid)
    if session is not None:
        await st.admission.closed(session.request, session.served_steps())
    return web.json_response({"session_id": sid, "closed": True})


async def step(request: web.Request) -> web.Response:
    began = time.monotonic()
    st = request.app[STATE]
    session = st.sessions.get(parse_session_id(request.match_info["sid"]))
    session.busy_steps += 1  # until the step has run and gone on (a client may wait for it)
    try:
        return await _run_and_push(request, st, session, began)
    finally:
        session.busy_steps -= 1


async def _run_and_push(
    request: web.Request, st: NodeState, session: Session, began: float
) -> web.Response:
    frame = await read_frame(request, _frame_limit(st, MAX_STEP_POSITIONS))
    upstream = parse_receipts_meta(frame.meta)
    budget = step_deadline.parse_budget(frame.meta)
    record = await steps.run_step(st.worker, session, frame)
    index = frame.meta["step"]
    shape = (1, record.length, st.worker.hidden_size)
    if not record.receipts:
        record.receipts = st.admission.receipts(
            session.id,
            index,
            upstream,
            record.input,
            record.output,
            record.start_pos,
            record.length,
        )
    if session.next_url is not None:
        handed, wait = st.sessions.push_budget(session, budget, time.monotonic() - began)
        meta = _step_meta(index, record.start_pos, record.receipts)
        meta["budget_ms"] = step_deadline.budget_ms(handed)
        out = TensorFrame("float32", shape, record.output, meta)
        await _push(st, session.next_url, session, out, wait)
    return web.json_response({"step": index, "position": record.start_pos + record.length})


async def _push(
    st: NodeState, next_url: str, session: Session, frame: TensorFrame, wait: float
) -> None:
    """Send our output to the next hop, and wait for it (and every hop after it) at most
    ``wait``, or until it stops answering (``stall_watch``). Any refusal there is the next
    hop's failure from the client's point of view (even a 4xx such as an unknown session
    after it restarted), so it is reported as a PeerError naming that hop unless it already
    names one further on."""
    url = f"{next_url}/sessions/{session.id}/steps"
    key = session.route[session.hop_index + 1].key
    if key is not None:  # the client's choice of key for the hop (parse_open requires it)
        st.peers.trust.expect(next_url, bytes.fromhex(key[2:]))
    try:
        await watched(st.peers.post_frame(url, frame, wait), st.peers.answers, next_url)
    except PeerError as exc:
        exc.details.setdefault("failed_url", next_url)
        raise
    except SharedLLMError as exc:
        raise PeerError(
            f"next hop {next_url} refused step: {exc}", failed_url=next_url, cause=exc.code
        ) from exc


async def output(request: web.Request) -> web.Response:
    st = request.app[STATE]
    session = _own_session(request)
    index = _query_int(request.match_info["step"], "step")
    record = await steps.wait_output(session, index, st.sessions.poll_timeout)
    response = await _delayed(
        st,
        TensorFrame(
            "float32",
            (1, record.length, st.worker.hidden_size),
            record.output,
            _step_meta(index, record.start_pos, record.receipts),
        ),
    )
    # Written here rather than after returning, so that the step counts as delivered (and
    # billable) only once its bytes went out; a client that left gets nothing and owes nothing.
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionResetError:  # the client left: nothing delivered, nothing to log
        return response
    session.delivered_steps = max(session.delivered_steps, index + 1)
    return response


def _step_meta(index: int, start_pos: int, receipts: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"step": index, "start_pos": start_pos}
    if receipts:
        meta["receipts"] = receipts
    return meta


async def replay(request: web.Request) -> web.Response:
    st = request.app[STATE]
    session = _own_session(request)
    # A replay carries the session's whole history so far, at most its max_length.
    frame = await read_frame(request, _frame_limit(st, session.request.max_length))
    out = await steps.replay(st.worker, session, frame)
    return await _delayed(st, TensorFrame("float32", frame.shape, out, frame.meta))


async def history(request: web.Request) -> web.Response:
    st = request.app[STATE]
    session = _own_session(request)
    which = request.query.get("which", "outputs")
    if which not in ("inputs", "outputs"):
        raise ProtocolError("which: expected inputs or outputs", field="which")
    upto = _query_int(request.query.get("upto", str(len(session.steps))), "upto")
    data, lengths = steps.history(session, which, upto)
    shape = (1, sum(lengths), st.worker.hidden_size)
    return await _delayed(st, TensorFrame("float32", shape, data, {"steps": lengths}))


async def reroute(request: web.Request) -> web.Response:
    st = request.app[STATE]
    session = _own_session(request)
    update = parse_route_update(await read_json(request))
    hop = update.route[update.hop_index]
    here = session.request.hop
    if (hop.start, hop.end) != (here.start, here.end):
        raise SpanNotServed(
            f"route[{update.hop_index}] names layers {hop.start}:{hop.end}, "
            f"the session runs {here.start}:{here.end}",
            field="route",
        )
    st.sessions.repoint(session, update)
    return web.json_response({"session_id": session.id, "next": session.next_url})


async def amend(request: web.Request) -> web.Response:
    """The client replaced another hop of this session's paid job (``protocol.amendment``)."""
    st = request.app[STATE]
    session = _own_session(request)
    amendments = parse_amend(await read_json(request), len(session.request.route))
    await st.admission.amend(session.id, amendments, session.position)
    return web.json_response({"session_id": session.id, "amendments": len(amendments)})


async def replayed_receipts(request: web.Request) -> web.Response:
    """A replacement that became the route's last hop takes the receipt chains of the steps
    it replayed from the client, so that it holds every step's chain and can submit."""
    st = request.app[STATE]
    session = _own_session(request)
    # One chain of at most every hop per replayed step: bounded by the session's length.
    limit = session.request.max_length * len(session.route) * (2 * RECEIPT_BYTES + 8) + 4096
    chains = parse_handoff(await read_json(request, min(limit, st.config.client_max_size)))
    async with session.turn():
        taken = await asyncio.to_thread(
            st.admission.replayed_receipts, session.id, chains, session.steps
        )
    return web.json_response({"session_id": session.id, "steps": taken})


async def _delayed(st: NodeState, frame: TensorFrame) -> web.Response:
    if st.config.link_delay_s:
        await asyncio.sleep(st.config.link_delay_s)
    return _frame_response(frame)


def _query_int(raw: str, field: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise ProtocolError(f"{field}: expected a non-negative integer", field=field)
    return int(raw)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/info", info)
    app.router.add_get("/shards/{digest}", shard)
    app.router.add_get("/manifests/{model_id}", manifest)
    app.router.add_post("/sessions", open_session)
    app.router.add_get("/sessions/{sid}", session_state)
    app.router.add_delete("/sessions/{sid}", close_session)
    app.router.add_post("/sessions/{sid}/steps", step)
    app.router.add_get("/sessions/{sid}/outputs/{step}", output)
    app.router.add_post("/sessions/{sid}/replay", replay)
    app.router.add_get("/sessions/{sid}/history", history)
    app.router.add_post("/sessions/{sid}/route", reroute)
    app.router.add_post("/sessions/{sid}/amend", amend)
    app.router.add_post("/sessions/{sid}/receipts", replayed_receipts)
