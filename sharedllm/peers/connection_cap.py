"""At most so many open connections per client (``client_address``), before aiohttp reads them.

A node raises its open-file limit so that idle sockets from strangers cannot make ``accept()``
fail, and aiohttp closes a connection that sends no complete request head within the
keep-alive timeout. What is left is one address opening tens of thousands of connections and
holding them: each costs a file descriptor and a buffer. This wraps the server's protocol
factory: a connection past the cap of its address is answered at once with a 429
(``TOO_MANY_CONNECTIONS``) and closed, before aiohttp sees a byte of it, and the cap frees
as connections close. Nodes on one machine all come from 127.0.0.1, so the cap is generous.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections import Counter
from collections.abc import Callable

from sharedllm.peers.client_address import client_of

DEFAULT_PER_PEER = 256
HANDSHAKE_TIMEOUT_S = 5.0  # a stranger's half-open TLS handshake holds a socket no longer
REFUSAL_LINGER_S = 1.0  # how long a refused connection may stay half-open


def _refusal(per_peer: int) -> bytes:
    body = json.dumps(
        {
            "code": "TOO_MANY_CONNECTIONS",
            "message": f"this address already holds {per_peer} connections to this node",
        }
    ).encode()
    head = (
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
    )
    return head.encode() + body


class PeerConnectionCap:
    """A protocol factory: ``factory()`` per connection, within ``per_peer`` per address.

    A connection a relay handed over comes from the relay's address; ``relayed(client)``
    counts it as the client the relay saw instead, and ``relayed_client`` tells that client
    to the request handlers (by the connection's transport)."""

    def __init__(self, factory: Callable[[], asyncio.Protocol], per_peer: int) -> None:
        if per_peer < 1:
            raise ValueError("per_peer must be at least 1")
        self.factory = factory
        self.per_peer = per_peer
        self.open: Counter[str] = Counter()
        self._refusal = _refusal(per_peer)
        self._relayed: dict[int, str] = {}  # id(transport) -> the client behind the relay

    def __call__(self) -> asyncio.Protocol:
        return _Capped(self)

    def relayed(self, client: str) -> asyncio.Protocol:
        return _Capped(self, client)

    def relayed_client(self, transport: object) -> str | None:
        return self._relayed.get(id(transport))


class _Capped(asyncio.Protocol):
    """Forwards to the wrapped protocol, once its address is within the cap."""

    def __init__(self, cap: PeerConnectionCap, relayed_from: str | None = None) -> None:
        self.cap = cap
        self.inner: asyncio.Protocol | None = None
        self.host = ""
        self.relayed_from = relayed_from
        self._transport: asyncio.BaseTransport | None = None
        self._linger: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.relayed_from is not None:
            self.host = client_of(self.relayed_from)
        else:
            peer = transport.get_extra_info("peername")
            self.host = client_of(str(peer[0])) if peer else ""
        if self.cap.open[self.host] >= self.cap.per_peer:
            # Answer, then half-close and wait a moment for the peer to close: closing with
            # its request unread would reset the connection and lose the answer.
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(self.cap._refusal)
            if transport.can_write_eof():
                transport.write_eof()
            loop = asyncio.get_running_loop()
            self._linger = loop.call_later(REFUSAL_LINGER_S, transport.close)
            return
        self.cap.open[self.host] += 1
        if self.relayed_from is not None:
            self._transport = transport
            self.cap._relayed[id(transport)] = self.relayed_from
        self.inner = self.cap.factory()
        self.inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger is not None:
            self._linger.cancel()
        if self._transport is not None:
            self.cap._relayed.pop(id(self._transport), None)
        if self.inner is None:
            return
        self.cap.open[self.host] -= 1
        if self.cap.open[self.host] <= 0:
            del self.cap.open[self.host]
        self.inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.inner is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()


async def listen(
    cap: PeerConnectionCap, host: str, port: int, tls: ssl.SSLContext | None = None
) -> asyncio.Server:
    """Serve the capped factory on ``host:port``; over TLS when ``tls`` is given (the cap
    then counts connections from their completed handshake, and a handshake must complete
    within ``HANDSHAKE_TIMEOUT_S``)."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return await loop.create_server(
        cap,
        host,
        port,
        family=family,
        reuse_address=True,
        ssl=tls,
        ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S if tls is not None else None,
    )


async def take_relayed(
    cap: PeerConnectionCap, sock: socket.socket, client: str, tls: ssl.SSLContext
) -> None:
    """Serve a connection a relay handed over (``sock``, already connected) as if ``client``
    had opened it: the same cap, the same TLS, the same handshake timeout."""
    loop = asyncio.get_running_loop()
    await loop.connect_accepted_socket(
        lambda: cap.relayed(client), sock, ssl=tls, ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S
    )
