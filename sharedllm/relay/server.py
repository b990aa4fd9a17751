"""The relay: a public address for nodes that cannot accept connections themselves.

A node behind NAT opens a control connection to the relay and proves its node key
(``protocol/relay_msgs``); the relay gives it a public port of its own, the same port for the
same key every time (a node registers that URL once, on-chain). A client's connection to
that port is announced to the node over the control connection; the node opens a data
connection back to the relay, and from then on the relay copies bytes both ways without
reading them. The client's TLS ends at the node, pinned to the node's key: the relay sees
only ciphertext, and cannot pose as the node.

Limits: a registration must complete within ``REGISTER_TIMEOUT_S``; at most
``max_per_node`` client connections per node and ``MAX_PENDING`` waiting for their data
connection, each for at most ``ACCEPT_TIMEOUT_S``; a control connection silent for
``SILENT_S`` is dropped (the node pings every ``PING_EVERY_S``, ``relay_msgs``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from sharedllm.errors import ConfigError, ProtocolError, SharedLLMError
from sharedllm.protocol import relay_msgs
from sharedllm.protocol.relay_msgs import MAX_LINE, SILENT_S, Register

log = logging.getLogger("sharedllm.relay")

REGISTER_TIMEOUT_S = 5.0
ACCEPT_TIMEOUT_S = 5.0
DIAL_BACK_TIMEOUT_S = 2.0
MAX_PENDING = 64
CHUNK = 1 << 16


class PortBook:
    """Which public port belongs to which node key, kept across restarts (sqlite)."""

    def __init__(self, path: Path, ports: range) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.ports = ports
        self._db = sqlite_utils.Database(sqlite3.connect(path))
        self._table = self._db.table("ports")
        self._table.create(
            {"key": str, "port": int, "first_seen": float}, pk="key", if_not_exists=True
        )
        self._table.create_index(["port"], unique=True, if_not_exists=True)

    def port_for(self, key: bytes) -> int:
        rows = list(self._table.rows_where("key = ?", [key.hex()]))
        if rows:
            return int(rows[0]["port"])
        taken = {int(r["port"]) for r in self._table.rows}
        free = next((p for p in self.ports if p not in taken), None)
        if free is None:
            raise ConfigError(
                f"every public port of this relay ({self.ports.start}-{self.ports.stop - 1}) "
                "is taken",
                code="RELAY_FULL",
            )
        with self._db.conn:
            self._table.insert({"key": key.hex(), "port": free, "first_seen": time.time()})
        return free


@dataclass
class Tunnel:
    """One registered node: its control connection and its public listener."""

    key: bytes
    port: int
    control: asyncio.StreamWriter
    listener: asyncio.Server | None = None
    clients: int = 0
    pending: dict[str, asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = field(
        default_factory=dict
    )


class Relay:
    def __init__(
        self,
        host: str,
        port: int,
        public_host: str,
        ports: range,
        book: PortBook,
        *,
        max_per_node: int = 256,
    ) -> None:
        self.host, self.port, self.public_host = host, port, public_host
        self.ports, self.book, self.max_per_node = ports, book, max_per_node
        self.tunnels: dict[bytes, Tunnel] = {}
        self._pending: dict[str, Tunnel] = {}  # token -> the tunnel waiting for it
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen for nodes; returns the control port (useful when 0 was asked)."""
        self._server = await asyncio.start_server(
            self._on_connection, self.host, self.port, limit=MAX_LINE
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for tunnel in list(self.tunnels.values()):
            await self._drop(tunnel)

    def url_of(self, port: int) -> str:
        return f"https://{self.public_host}:{port}"

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            first = relay_msgs.parse_line(
                await asyncio.wait_for(reader.readline(), REGISTER_TIMEOUT_S)
            )
            if "accept" in first:
                await self._take_data(relay_msgs.token_of(first, "accept"), reader, writer)
                return
            await self._serve_node(relay_msgs.parse_register(first), reader, writer)
        except (SharedLLMError, ValueError) as exc:
            await _refuse(writer, exc)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            writer.close()
        except OSError as exc:  # the node's public port cannot be opened
            log.warning("cannot open a public port: %s", exc)
            await _refuse(writer, ConfigError(f"the relay cannot open a port: {exc.strerror}",
                                              code="RELAY_PORT_BUSY"))  # fmt: skip

    async def _serve_node(
        self, register: Register, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        nonce = secrets.token_hex(16)
        writer.write(relay_msgs.line({"nonce": nonce}))
        await writer.drain()
        answer = await asyncio.wait_for(reader.readline(), REGISTER_TIMEOUT_S)
        relay_msgs.check_signature(register, nonce, relay_msgs.parse_line(answer))
        port = self.book.port_for(register.key)
        old = self.tunnels.get(register.key)
        if old is not None:  # the node reconnected (a restart, a new NAT mapping)
            await self._drop(old)
        tunnel = Tunnel(register.key, port, writer)
        tunnel.listener = await asyncio.start_server(
            lambda r, w: self._on_client(tunnel, r, w), self.host, port
        )
        self.tunnels[register.key] = tunnel
        peer = writer.get_extra_info("peername")
        direct = register.listen_port is not None and await _reachable(
            str(peer[0]), register.listen_port
        )
        writer.write(relay_msgs.line({"url": self.url_of(port), "direct": direct}))
        await writer.drain()
        log.info(
            "node 0x%s… at %s (direct: %s)", register.key.hex()[:12], self.url_of(port), direct
        )
        try:
            await self._keep(tunnel, reader)
        finally:
            if self.tunnels.get(register.key) is tunnel:
                await self._drop(tunnel)

    async def _keep(self, tunnel: Tunnel, reader: asyncio.StreamReader) -> None:
        """Answer the node's pings until it goes quiet or away."""
        while True:
            raw = await asyncio.wait_for(reader.readline(), SILENT_S)
            if not raw:
                return
            message = relay_msgs.parse_line(raw)
            if "ping" in message:
                tunnel.control.write(relay_msgs.line({"pong": message["ping"]}))
                await tunnel.control.drain()

    async def _drop(self, tunnel: Tunnel) -> None:
        self.tunnels.pop(tunnel.key, None)
        if tunnel.listener is not None:
            tunnel.listener.close()
        for token, waiting in tunnel.pending.items():
            self._pending.pop(token, None)
            if not waiting.done():
                waiting.set_exception(ConnectionError("the node left the relay"))
        tunnel.control.close()

    async def _on_client(
        self, tunnel: Tunnel, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if tunnel.clients >= self.max_per_node or len(tunnel.pending) >= MAX_PENDING:
            writer.close()
            return
        tunnel.clients += 1
        token = secrets.token_hex(16)
        waiting = asyncio.get_running_loop().create_future()
        tunnel.pending[token] = waiting
        self._pending[token] = tunnel
        try:
            peer = writer.get_extra_info("peername")
            tunnel.control.write(
                relay_msgs.line({"connect": token, "client": str(peer[0]) if peer else ""})
            )
            await tunnel.control.drain()
            node_reader, node_writer = await asyncio.wait_for(waiting, ACCEPT_TIMEOUT_S)
        except (TimeoutError, ConnectionError):
            writer.close()
            tunnel.clients -= 1
            return
        finally:
            tunnel.pending.pop(token, None)
            self._pending.pop(token, None)
        try:
            await self._splice(reader, writer, node_reader, node_writer)
        finally:
            tunnel.clients -= 1

    async def _take_data(
        self, token: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        tunnel = self._pending.get(token)
        waiting = tunnel.pending.get(token) if tunnel is not None else None
        if waiting is None or waiting.done():
            raise ProtocolError("no client waits for that token", code="RELAY_UNKNOWN_TOKEN")
        waiting.set_result((reader, writer))

    async def _splice(
        self,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
        node_reader: asyncio.StreamReader,
        node_writer: asyncio.StreamWriter,
    ) -> None:
        """Copy bytes both ways until both sides have finished, then close both."""
        try:
            await asyncio.gather(
                self._copy(client_reader, node_writer, to_node=True),
                self._copy(node_reader, client_writer, to_node=False),
            )
        finally:
            for writer in (client_writer, node_writer):
                writer.close()

    async def _copy(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, to_node: bool
    ) -> None:
        """Copy one direction, unread and unchanged, until it ends."""
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()


async def _reachable(host: str, port: int) -> bool:
    """Whether a connection to ``host:port`` opens: the node's own address answers."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), DIAL_BACK_TIMEOUT_S)
    except (TimeoutError, OSError):
        return False
    writer.close()
    return True


async def _refuse(writer: asyncio.StreamWriter, exc: Exception) -> None:
    code = exc.code if isinstance(exc, SharedLLMError) else "BAD_REQUEST"
    message = exc.message if isinstance(exc, SharedLLMError) else str(exc)
    with contextlib.suppress(ConnectionError, OSError):
        writer.write(relay_msgs.line({"error": message[:500], "code": code}))
        await writer.drain()
    writer.close()
