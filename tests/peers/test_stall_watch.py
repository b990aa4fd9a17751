"""A call to a peer that stops answering ends within seconds and names the peer; a slow peer
that still answers keeps its whole deadline. Probes go over real sockets on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from sharedllm.errors import PeerError
from sharedllm.peers.http import PeerClient
from sharedllm.peers.stall_watch import Watch, watched

FAST = Watch(after_s=0.2, probe_timeout_s=0.2, every_s=0.1, misses=2)


def run(test: Callable[[], Awaitable[None]]) -> Callable[[], None]:
    @functools.wraps(test)
    def sync() -> None:
        asyncio.run(asyncio.wait_for(test(), 30))  # type: ignore[arg-type]

    return sync


@contextlib.asynccontextmanager
async def silent_peer() -> AsyncIterator[str]:
    """Accepts connections and reads what is sent, and never answers: a frozen process."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        with contextlib.suppress(ConnectionError):
            while await reader.read(1 << 16):
                pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for writer in held:
            writer.close()
        server.close()


@contextlib.asynccontextmanager
async def answering_peer(status: int = 200) -> AsyncIterator[str]:
    async def info(_: web.Request) -> web.Response:
        return web.json_response({"ok": status == 200}, status=status)

    app = web.Application()
    app.router.add_get("/info", info)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@run
async def test_a_silent_peer_is_named_stalled_long_before_the_deadline() -> None:
    async with silent_peer() as url, PeerClient() as peers:
        began = time.monotonic()
        with pytest.raises(PeerError) as err:
            await watched(peers.get_json(f"{url}/slow", timeout=20.0), peers.answers, url, FAST)
        took = time.monotonic() - began
    assert err.value.code == "PEER_STALLED"
    assert err.value.details["failed_url"] == url
    assert took < 5.0  # the call's own deadline was 20 s


@run
async def test_poc_without_the_watch_a_silent_peer_holds_the_call_to_its_deadline() -> None:
    async with silent_peer() as url, PeerClient() as peers:
        began = time.monotonic()
        with pytest.raises(PeerError) as err:
            await peers.get_json(f"{url}/slow", timeout=1.0)
    assert err.value.code == "PEER_FAILED" and "timed out" in err.value.message
    assert time.monotonic() - began >= 1.0


@run
async def test_a_slow_peer_that_answers_its_probes_keeps_its_deadline() -> None:
    probes = []

    async def alive(url: str, timeout: float) -> bool:
        probes.append(url)
        return True

    async def slow() -> str:
        await asyncio.sleep(1.0)
        return "done"

    assert await watched(slow(), alive, "http://peer", FAST) == "done"
    assert len(probes) >= 3  # it was probed all along, and never given up on


@run
async def test_one_missed_probe_is_forgiven() -> None:
    answers = iter([False, True, False, True, False, True, True, True, True, True, True])

    async def flaky(url: str, timeout: float) -> bool:
        return next(answers, True)

    async def slow() -> int:
        await asyncio.sleep(1.2)
        return 7

    assert await watched(slow(), flaky, "http://peer", FAST) == 7


@run
async def test_the_calls_own_failure_passes_through_unchanged() -> None:
    async def alive(url: str, timeout: float) -> bool:
        return True

    async def refused() -> None:
        raise PeerError("no", code="SESSION_UNKNOWN")

    with pytest.raises(PeerError) as err:
        await watched(refused(), alive, "http://peer", FAST)
    assert err.value.code == "SESSION_UNKNOWN"


@run
async def test_cancelling_the_watch_cancels_the_call() -> None:
    cancelled = asyncio.Event()

    async def alive(url: str, timeout: float) -> bool:
        return True

    async def forever() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            cancelled.set()

    task = asyncio.create_task(watched(forever(), alive, "http://peer", FAST))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(cancelled.wait(), 1.0)


@run
async def test_any_http_answer_counts_as_alive_and_silence_does_not() -> None:
    async with (
        answering_peer(200) as ok,
        answering_peer(429) as busy,
        silent_peer() as silent,
        PeerClient() as peers,
    ):
        assert await peers.answers(ok, 1.0)
        assert await peers.answers(busy, 1.0)  # a full node is alive
        began = time.monotonic()
        assert not await peers.answers(silent, 0.3)
        assert time.monotonic() - began < 2.0
        assert not await peers.answers("http://127.0.0.1:9", 0.3)  # nothing listens


def test_the_worst_case_is_what_the_watch_waits() -> None:
    assert Watch().worst_s == 1.5 + 2 * 1.5 + 0.5
