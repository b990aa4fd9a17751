"""Copy connections from one socket to another, both ways, until stopped:

    python tests/forward.py LISTEN CONNECT     each one tcp:HOST:PORT or unix:PATH

A Unix socket is a file, seen from every network namespace alike: forwarding a namespace's
TCP port to a Unix socket, and that socket to this machine's loopback, lets the hosts of a
namespace test reach a devnet that listens on 127.0.0.1 only, and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys


async def _open(where: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    kind, _, rest = where.partition(":")
    if kind == "unix":
        return await asyncio.open_unix_connection(rest)
    host, _, port = rest.rpartition(":")
    return await asyncio.open_connection(host, int(port))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    writer.close()


async def main(listen: str, connect: str) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            far_reader, far_writer = await _open(connect)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, far_writer), _pipe(far_reader, writer))

    kind, _, rest = listen.partition(":")
    if kind == "unix":
        server = await asyncio.start_unix_server(handle, rest)
    else:
        host, _, port = rest.rpartition(":")
        server = await asyncio.start_server(handle, host, int(port))
    print(f"ready forward {listen} {connect}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
