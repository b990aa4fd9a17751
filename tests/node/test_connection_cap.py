"""At most so many connections per remote address, over real loopback sockets.

Proof of concept: one address opening connection after connection and holding them (each a
file descriptor and a buffer on the node) until the node runs out. With the cap, a connection
past it is answered with a 429 at once and closed; the cap frees as connections close.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from sharedllm.peers import connection_cap


async def _info(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _get_info(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


async def _scenario() -> None:
    app = web.Application()
    app.router.add_get("/info", _info)
    runner = web.AppRunner(app, keepalive_timeout=30)
    await runner.setup()
    cap = connection_cap.PeerConnectionCap(runner.server, per_peer=4)
    listener = await connection_cap.listen(cap, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]
        await asyncio.sleep(0.1)
        refused = await _get_info(port)
        head, _, body = refused.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 429")
        assert json.loads(body)["code"] == "TOO_MANY_CONNECTIONS"

        # A held connection still works, and closing one frees a place for a new one.
        reader, writer = held[0]
        writer.write(b"GET /info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await writer.drain()
        assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 200")
        writer.close()
        await asyncio.sleep(0.1)
        assert (await _get_info(port)).startswith(b"HTTP/1.1 200")
        for _, w in held[1:]:
            w.close()
    finally:
        listener.close()
        await runner.cleanup()


def test_a_peer_past_its_connection_cap_is_refused_and_the_cap_frees_as_it_closes() -> None:
    asyncio.run(_scenario())
