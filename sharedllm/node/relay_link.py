"""A node's link to a relay, for a node that cannot accept connections itself (behind NAT).

The node registers with its node key (``protocol/relay_msgs``) and gets a public URL on the
relay, the same one every time; each client connection there arrives as a request to open
a data connection back to the relay, which the node then serves exactly like a connection
it accepted itself: the same TLS (so the relay sees only ciphertext), the same per-client
limits (counted by the client address the relay saw). When the relay goes away the node
registers again, with growing pauses, and keeps serving direct connections meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from nacl.signing import SigningKey

from sharedllm.errors import PeerError, ProtocolError
from sharedllm.protocol import relay_msgs
from sharedllm.protocol.relay_msgs import MAX_LINE, PING_EVERY_S, SILENT_S, Assigned

log = logging.getLogger("sharedllm.node")

CONNECT_TIMEOUT_S = 5.0
RECONNECT_S = (1.0, 2.0, 5.0, 10.0, 30.0)  # pauses between attempts, the last repeated


class RelayLink:
    def __init__(
        self,
        relay: tuple[str, int],
        key: SigningKey,
        listen_port: int | None,
        take: Callable[[socket.socket, str], Awaitable[None]],
    ) -> None:
        """``take(sock, client)`` serves a data connection as a connection from ``client``."""
        self.relay, self.key, self.listen_port, self.take = relay, key, listen_port, take
        self.assigned: Assigned | None = None
        self._control: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._accepts: set[asyncio.Task[None]] = set()

    @property
    def where(self) -> str:
        return f"{self.relay[0]}:{self.relay[1]}"

    async def register(self) -> Assigned:
        """Open the control connection and prove the node key; the relay's answer."""
        host, port = self.relay
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=MAX_LINE), CONNECT_TIMEOUT_S
            )
        except (TimeoutError, OSError) as exc:
            raise PeerError(f"relay {self.where} does not answer: {exc or 'timed out'}") from None
        try:
            writer.write(relay_msgs.line(relay_msgs.registration(self.key, self.listen_port)))
            nonce = relay_msgs.token_of(await self._answer(reader), "nonce")
            writer.write(relay_msgs.line(relay_msgs.sign_nonce(self.key, nonce)))
            assigned = relay_msgs.parse_assigned(await self._answer(reader))
        except BaseException:
            writer.close()
            raise
        self._control = (reader, writer)
        self.assigned = assigned
        return assigned

    async def _answer(self, reader: asyncio.StreamReader) -> dict[str, Any]:
        try:
            raw = await asyncio.wait_for(reader.readline(), CONNECT_TIMEOUT_S)
        except (TimeoutError, OSError, ValueError) as exc:
            raise PeerError(f"relay {self.where} stopped answering: {exc or 'timed out'}") from None
        if not raw:
            raise PeerError(f"relay {self.where} closed the connection")
        message = relay_msgs.parse_line(raw)
        refused = relay_msgs.refusal(message)
        if refused is not None:
            raise PeerError(f"relay {self.where} refused: {refused[1]}", code=refused[0])
        return message

    async def run(self) -> None:
        """Serve the relay's requests for ever, registering again whenever the link drops."""
        attempt = 0
        while True:
            if self._control is not None:
                attempt = 0
                try:
                    await self._serve(*self._control)
                except (OSError, TimeoutError, ValueError, ProtocolError) as exc:
                    log.warning("relay %s: link lost (%s); registering again", self.where, exc)
                self._control = None
            await asyncio.sleep(RECONNECT_S[min(attempt, len(RECONNECT_S) - 1)])
            attempt += 1
            before = self.assigned
            try:
                now = await self.register()
            except (PeerError, ProtocolError) as exc:
                log.warning("relay %s: %s", self.where, exc)
                continue
            if before is not None and now.url != before.url:
                log.error(
                    "relay %s now gives this node %s, not %s: clients that know the old URL "
                    "no longer reach it", self.where, now.url, before.url,
                )  # fmt: skip
            log.info("relay %s: registered again at %s", self.where, now.url)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pinger = asyncio.create_task(_ping(writer))
        try:
            while True:
                raw = await asyncio.wait_for(reader.readline(), SILENT_S)
                if not raw:
                    raise ConnectionError("the relay closed the control connection")
                message = relay_msgs.parse_line(raw)
                if "connect" in message:
                    token = relay_msgs.token_of(message, "connect")
                    task = asyncio.create_task(self._accept(token, _client(message)))
                    self._accepts.add(task)
                    task.add_done_callback(self._accepts.discard)
                elif "ping" in message:
                    writer.write(relay_msgs.line({"pong": message["ping"]}))
        finally:
            pinger.cancel()
            writer.close()

    async def _accept(self, token: str, client: str) -> None:
        """Open the data connection for one client and serve it."""
        loop = asyncio.get_running_loop()
        host, port = self.relay
        try:
            family, kind, proto, _, address = (
                await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            )[0]
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            log.warning("relay %s: cannot open a data connection: %s", self.where, exc)
            return
        try:
            sock.setblocking(False)
            await asyncio.wait_for(loop.sock_connect(sock, address), CONNECT_TIMEOUT_S)
            await loop.sock_sendall(sock, relay_msgs.line({"accept": token}))
            await self.take(sock, client)
        except (OSError, TimeoutError, ConnectionError) as exc:
            sock.close()
            log.info("relay %s: a client's connection was lost on the way: %s", self.where, exc)

    async def close(self) -> None:
        if self._control is not None:
            self._control[1].close()
        for task in list(self._accepts):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._accepts, return_exceptions=True)


async def _ping(writer: asyncio.StreamWriter) -> None:
    """Ping until the connection breaks (the reader then notices and registers again)."""
    n = 0
    with contextlib.suppress(ConnectionError, OSError):
        while True:
            await asyncio.sleep(PING_EVERY_S)
            n += 1
            writer.write(relay_msgs.line({"ping": n}))
            await writer.drain()


def _client(message: dict[str, Any]) -> str:
    """The client's address as the relay saw it, if it is one."""
    value = message.get("client")
    try:
        return str(ipaddress.ip_address(value)) if isinstance(value, str) else ""
    except ValueError:
        return ""


def parse_relay(value: str) -> tuple[str, int]:
    """``--relay HOST:PORT`` (an IPv6 host in brackets)."""
    host, sep, port = value.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ProtocolError(f"--relay: expected HOST:PORT, got {value!r}", field="relay")
    return host, int(port)
