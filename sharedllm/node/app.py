"""Start a node: fetch what is missing, load the span, serve until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import resource
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from nacl.signing import SigningKey

from sharedllm.cli_base import ready_line
from sharedllm.errors import ConfigError
from sharedllm.model.device import resolve_device
from sharedllm.model.store import Manifest, ModelStore
from sharedllm.node.admission import AcceptAll, Admission
from sharedllm.node.batch_handlers import add_batch_routes
from sharedllm.node.config import NodeConfig
from sharedllm.node.handlers import STATE, NodeState, add_routes, error_middleware
from sharedllm.node.handoff import ReceiptHandoff, add_handoff_routes
from sharedllm.node.ledger import Ledger
from sharedllm.node.move_registration import FreePeers, MoveRegistration
from sharedllm.node.rebalancer import Rebalancer
from sharedllm.node.relay_link import RelayLink
from sharedllm.node.sessions import SessionManager
from sharedllm.node.shard_fetch import fetch_missing_shards
from sharedllm.node.span_worker import SpanWorker
from sharedllm.node.transcript_handlers import TranscriptAccess, add_transcript_routes
from sharedllm.peers import connection_cap, link_tls
from sharedllm.peers.http import PeerClient
from sharedllm.stop_signals import stop_event

log = logging.getLogger("sharedllm.node")


def build_app(
    state: NodeState,
    transcripts: TranscriptAccess | None = None,
    handoff: ReceiptHandoff | None = None,
    batches: Ledger | None = None,
) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware], client_max_size=state.config.client_max_size
    )
    app[STATE] = state
    add_routes(app)
    add_transcript_routes(app, transcripts)
    add_handoff_routes(app, handoff)
    add_batch_routes(app, batches)
    return app


async def _gauge(state: NodeState) -> None:
    """Keep the speed /info announces current while no client uses the node. The first
    looks come soon and then ever less often: a node's first figure often comes from a
    start shared with other busy processes (its peers loading their layers, say), and the
    fastest of more steps is the truer figure."""
    wait = SPEED_FIRST_S
    while True:
        await asyncio.sleep(wait * (1 + random.random()))
        wait = min(SPEED_REFRESH_S, 2 * wait)
        if state.worker.queued_steps == 0 and state.moving_to is None:
            await state.worker.measure_speed()


async def _reap(state: NodeState) -> None:
    """Close sessions idle past their timeout or older than their lifetime."""
    while True:
        cfg = state.config
        await asyncio.sleep(min(5.0, cfg.idle_timeout_s / 2, cfg.unstepped_timeout_s / 2))
        for sid in state.sessions.expired():
            session = await state.sessions.close(sid)
            if session is not None:
                log.info("closed idle session %s", sid)
                await state.admission.closed(session.request, session.served_steps())


def _say_reach(link: RelayLink, port: int, direct: bool) -> None:
    assert link.assigned is not None
    through = f"through relay {link.where} at {link.assigned.url}"
    if direct:
        log.info("reach: directly (the relay opened a connection to port %d) and %s", port, through)
    else:
        log.warning(
            "reach: only %s (the relay could not open a connection to port %d: this node is "
            "not reachable directly)", through, port,
        )  # fmt: skip


KEEPALIVE_TIMEOUT_S = 15.0
# An idle node measures its speed again after one to two of these; the first after
# SPEED_FIRST_S (one to two of it), each next wait twice the last.
SPEED_REFRESH_S = 30.0
SPEED_FIRST_S = 1.0
WANTED_OPEN_FILES = 65536


def raise_open_file_limit() -> None:
    """Raise the soft limit on open files towards the hard one: at the common soft limit of
    1024, a thousand idle sockets from strangers make accept() fail for honest clients."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = WANTED_OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, WANTED_OPEN_FILES)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        log.info("open files: soft limit raised from %d to %d", soft, wanted)


async def serve(
    config: NodeConfig,
    store: ModelStore,
    manifest: Manifest,
    start: int,
    end: int,
    *,
    started_at: float,
    admission: Admission | None = None,
    background: Sequence[Callable[[], Awaitable[None]]] = (),
    transcripts: TranscriptAccess | None = None,
    handoff: ReceiptHandoff | None = None,
    batches: Ledger | None = None,
    wrap_runner: Callable[[Any], Any] | None = None,
    link_key: SigningKey | None = None,
    relay: tuple[str, int] | None = None,
    registered_endpoint: str | None = None,
    registration: MoveRegistration | None = None,
) -> None:
    """``link_key``: serve TLS 1.3 with this node key's certificate (``peers/link_tls``).
    ``relay``: also be reachable through the relay at that address (``relay_link``); a paid
    node's ``registered_endpoint`` must then be the URL the relay gives it.
    ``registration``: where a rebalancing node's peers are listed and its moves recorded
    (the ``--peer`` list, with nothing on-chain, by default).
    ``wrap_runner`` is for tests: a cheating runner around the honest one."""
    peers = PeerClient(link_delay_s=config.link_delay_s, trust=config.peer_trust())
    try:
        await fetch_missing_shards(peers, store, manifest, start, end, config.peers)
        device = resolve_device(config.device)

        def make_worker(start: int, end: int) -> SpanWorker:
            worker = SpanWorker(
                store,
                manifest,
                start,
                end,
                wrap_runner,
                max_batch=config.max_batch,
                batch_positions=config.batch_positions,
                batch_wait_ms=config.batch_wait_ms,
                device=device,
            )
            worker.warm_up()
            return worker

        worker = make_worker(start, end)
        state = NodeState(
            config, store, worker, SessionManager(worker, config), admission or AcceptAll(), peers
        )
        raise_open_file_limit()
        runner = web.AppRunner(
            build_app(state, transcripts, handoff, batches),
            access_log=None,
            handle_signals=False,
            # An idle keep-alive connection holds a file descriptor: let it go soon, not
            # after aiohttp's default of an hour.
            keepalive_timeout=KEEPALIVE_TIMEOUT_S,
        )
        await runner.setup()
        assert runner.server is not None
        tls = link_tls.server_context(link_key) if link_key is not None else None
        cap = connection_cap.PeerConnectionCap(runner.server, config.max_connections_per_peer)
        state.relayed_client = cap.relayed_client
        listener = await connection_cap.listen(cap, config.host, config.port, tls)
        port = listener.sockets[0].getsockname()[1]
        scheme = "https" if tls is not None else "http"
        url = config.public_url or f"{scheme}://{config.host}:{port}"
        link = None
        if relay is not None:
            assert tls is not None and link_key is not None  # cli.py refuses --plaintext
            context = tls

            async def take(sock: socket.socket, client: str) -> None:
                await connection_cap.take_relayed(cap, sock, client, context)

            link = RelayLink(relay, link_key, port, take)
            assigned = await link.register()
            url = config.public_url or assigned.url
            _say_reach(link, port, assigned.direct)
            if registered_endpoint is not None and registered_endpoint != assigned.url:
                await link.close()
                raise ConfigError(
                    f"the relay gives this node {assigned.url}, but {registered_endpoint} is "
                    f"registered: `sharedllm-node update --endpoint {assigned.url}` first",
                    field="relay",
                )
        else:
            log.info("reach: directly at %s only; a node behind NAT needs --relay HOST:PORT", url)
        stop = stop_event()
        if link_key is not None:
            log.info(
                "links: TLS 1.3 pinned to key 0x%s; clients without a registry pin it with "
                "--nodes %s#0x%s",
                bytes(link_key.verify_key).hex(), url, bytes(link_key.verify_key).hex(),
            )  # fmt: skip
        else:
            log.warning("links: plain http, readable and alterable by anyone on the path")
        ready = {
            "model": manifest.model_id,
            "layers": f"{start}:{end}",
            "startup_s": f"{time.perf_counter() - started_at:.2f}",
            "pid": os.getpid(),
            "key": f"0x{bytes(link_key.verify_key).hex()}" if link_key is not None else None,
            "via": f"relay:{link.where}" if link is not None else None,
        }
        print(ready_line(url, ready, as_json=config.json_output), flush=True)
        tasks = [asyncio.create_task(_reap(state)), asyncio.create_task(_gauge(state))]
        if config.rebalance_interval_s is not None:
            listed = registration or FreePeers(config.peers)
            rebalancer = Rebalancer(state, url, make_worker, listed)
            tasks.append(asyncio.create_task(rebalancer.run()))
        if link is not None:
            tasks.append(asyncio.create_task(link.run()))
        tasks += [asyncio.create_task(job()) for job in background]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)
            if link is not None:
                await link.close()
            listener.close()  # no new connections; the runner closes the open ones
            await state.sessions.close_all()
            await runner.cleanup()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(listener.wait_closed(), 5.0)
            state.worker.close()  # the span served last (a move replaced the first)
            print("stopped", file=sys.stderr, flush=True)
    finally:
        await peers.close()
