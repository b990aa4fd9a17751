"""The relay over real sockets on loopback: a node reached only through it answers pinned TLS
requests, the relay copies nothing but ciphertext, nobody registers another's key, a port
stays its key's across restarts, and a node finds its relay again after the relay restarts."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from nacl.signing import SigningKey

from sharedllm.chain.devnet import free_port
from sharedllm.errors import PeerError
from sharedllm.node import relay_link
from sharedllm.node.relay_link import RelayLink
from sharedllm.peers import connection_cap, link_tls
from sharedllm.peers.http import PeerClient
from sharedllm.peers.link_tls import LinkTrust
from sharedllm.protocol import relay_msgs
from sharedllm.relay.server import PortBook, Relay
from sharedllm.testing.faulty_relay import tampering

NODE_KEY = SigningKey(bytes(range(32)))
SECRET = "the-prompt-no-relay-may-read"


def run(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    @functools.wraps(test)
    def sync(*args: object, **kwargs: object) -> None:
        asyncio.run(asyncio.wait_for(test(*args, **kwargs), 60))

    return sync


@contextlib.asynccontextmanager
async def relay_at(db: Path, port: int, public: int) -> AsyncIterator[Relay]:
    relay = Relay(
        "127.0.0.1",
        port,
        "127.0.0.1",
        range(public, public + 1),
        PortBook(db, range(public, public + 1)),
    )
    await relay.start()
    try:
        yield relay
    finally:
        await relay.close()


@contextlib.asynccontextmanager
async def node_behind(relay_port: int, key: SigningKey = NODE_KEY) -> AsyncIterator[RelayLink]:
    """A TLS node whose handler echoes the client the request counts as, reached through
    the relay (it listens on loopback too, as a node does)."""
    cap_box: list[connection_cap.PeerConnectionCap] = []
    echoed: list[bytes] = []

    async def info(request: web.Request) -> web.Response:
        relayed = cap_box[0].relayed_client(request.transport)
        return web.json_response({"secret": SECRET, "client": relayed})

    async def echo(request: web.Request) -> web.Response:
        echoed.append(await request.read())
        return web.json_response({"echoed": len(echoed)})

    app = web.Application()
    app.router.add_get("/info", info)
    app.router.add_post("/echo", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    assert runner.server is not None
    cap = connection_cap.PeerConnectionCap(runner.server, 16)
    cap_box.append(cap)
    tls = link_tls.server_context(key)
    listener = await connection_cap.listen(cap, "127.0.0.1", 0, tls)
    port = listener.sockets[0].getsockname()[1]

    async def take(sock, client: str) -> None:
        await connection_cap.take_relayed(cap, sock, client, tls)

    link = RelayLink(("127.0.0.1", relay_port), key, port, take)
    link.echoed = echoed  # type: ignore[attr-defined]  # what the node's handler received
    await link.register()
    serving = asyncio.create_task(link.run())
    try:
        yield link
    finally:
        serving.cancel()
        await link.close()
        listener.close()
        await runner.cleanup()


def pinned_client(url: str) -> PeerClient:
    trust = LinkTrust()
    trust.expect(url, bytes(NODE_KEY.verify_key))
    return PeerClient(trust=trust)


class Recording(Relay):
    """A relay that keeps a copy of every byte it carries."""

    copied: list[bytes] = []

    async def _copy(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, to_node: bool
    ) -> None:
        copied = self.copied

        class Tap:
            async def read(self, n: int) -> bytes:
                data = await reader.read(n)
                copied.append(data)
                return data

        await super()._copy(Tap(), writer, to_node=to_node)  # type: ignore[arg-type]


@run
async def test_a_relayed_node_answers_pinned_tls_and_the_relay_sees_only_ciphertext(
    tmp_path: Path,
) -> None:
    control, public = free_port(), free_port()
    ports = range(public, public + 1)
    relay = Recording("127.0.0.1", control, "127.0.0.1", ports, PortBook(tmp_path / "p.db", ports))
    await relay.start()
    try:
        async with node_behind(control) as link:
            assert link.assigned is not None
            url = link.assigned.url
            assert url == f"https://127.0.0.1:{public}"
            assert link.assigned.direct  # its own loopback port answered the relay's dial-back
            async with pinned_client(url) as peers:
                answers = [await peers.get_json(f"{url}/info", 10) for _ in range(3)]
    finally:
        await relay.close()
    assert all(a["secret"] == SECRET for a in answers)
    assert answers[0]["client"] == "127.0.0.1"  # the client the relay saw, not the relay
    seen = b"".join(Recording.copied)
    assert len(seen) > 1000  # the handshakes and requests went through the relay
    assert SECRET.encode() not in seen and b"/info" not in seen


@run
async def test_poc_a_stranger_cannot_register_a_nodes_key(tmp_path: Path) -> None:
    """Proof of concept of what the signature stops: whoever registers a node's key takes
    its public port, and its clients' connections. Without the node's private key, the
    relay refuses."""
    control, public = free_port(), free_port()
    async with relay_at(tmp_path / "ports.db", control, public):
        reader, writer = await asyncio.open_connection("127.0.0.1", control)
        writer.write(relay_msgs.line(relay_msgs.registration(NODE_KEY, None)))
        nonce = relay_msgs.token_of(relay_msgs.parse_line(await reader.readline()), "nonce")
        impostor = SigningKey(bytes(range(1, 33)))
        writer.write(relay_msgs.line(relay_msgs.sign_nonce(impostor, nonce)))
        answer = relay_msgs.parse_line(await reader.readline())
        writer.close()
    assert relay_msgs.refusal(answer) == (
        "SIGNATURE_MISMATCH",
        "the signature is not the registering key's",
    )


@run
async def test_a_key_keeps_its_port_and_a_node_finds_its_relay_again(tmp_path: Path) -> None:
    control, public = free_port(), free_port()
    db = tmp_path / "ports.db"
    other = SigningKey(bytes(range(2, 34)))
    relay = Relay("127.0.0.1", control, "127.0.0.1", range(public, public + 2),
                  PortBook(db, range(public, public + 2)))  # fmt: skip
    await relay.start()
    try:
        async with node_behind(control) as link:
            assert link.assigned is not None
            first = link.assigned.url
            await relay.close()  # the relay restarts
            relay = Relay("127.0.0.1", control, "127.0.0.1", range(public, public + 2),
                          PortBook(db, range(public, public + 2)))  # fmt: skip
            await relay.start()
            async with pinned_client(first) as peers:
                for _ in range(40):  # the node registers again within a few seconds
                    with contextlib.suppress(PeerError):
                        if (await peers.get_json(f"{first}/info", 2))["secret"] == SECRET:
                            break
                    await asyncio.sleep(0.25)
                else:
                    pytest.fail("the node never came back through the restarted relay")
            async with node_behind(control, other) as second:
                assert second.assigned is not None and second.assigned.url != first
    finally:
        await relay.close()


@run
async def test_a_node_that_leaves_closes_its_public_port(tmp_path: Path) -> None:
    control, public = free_port(), free_port()
    async with relay_at(tmp_path / "ports.db", control, public) as relay:
        async with node_behind(control):
            assert len(relay.tunnels) == 1
        for _ in range(40):
            if not relay.tunnels:
                break
            await asyncio.sleep(0.05)
        assert not relay.tunnels
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", public)


@run
async def test_bad_lines_are_refused_with_a_reason(tmp_path: Path) -> None:
    control, public = free_port(), free_port()
    async with relay_at(tmp_path / "ports.db", control, public):
        for bad in (b"[" * 5000 + b"\n", b'{"register": 2}\n', b'{"accept": "zz"}\n',
                    b"x" * 5000 + b"\n", b'{"accept": "' + b"ab" * 16 + b'"}\n'):  # fmt: skip
            reader, writer = await asyncio.open_connection("127.0.0.1", control)
            writer.write(bad)
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            assert answer == b"" or "error" in json.loads(answer), (bad[:20], answer)


def test_relay_addresses_parse_strictly() -> None:
    assert relay_link.parse_relay("10.0.0.1:7000") == ("10.0.0.1", 7000)
    assert relay_link.parse_relay("[::1]:7000") == ("::1", 7000)
    for bad in ("10.0.0.1", ":7000", "host:0", "host:70000", "host:x"):
        with pytest.raises(Exception, match="--relay"):
            relay_link.parse_relay(bad)


@pytest.mark.parametrize("mode", ["flip", "replay"])
@run
async def test_a_relay_that_alters_or_replays_bytes_only_breaks_the_link(
    tmp_path: Path, mode: str
) -> None:
    """A relay that tampers with what it carries (over plain http a repeated request runs
    twice: the proof of concept in tests/peers/test_link_tls.py). Over TLS pinned to the
    node, a flipped or repeated chunk is refused by the node's TLS, the connection breaks,
    and no request is run, altered or twice."""
    control, public = free_port(), free_port()
    ports = range(public, public + 1)
    relay = tampering(mode, 600)("127.0.0.1", control, "127.0.0.1", ports,
                                 PortBook(tmp_path / "p.db", ports))  # fmt: skip
    await relay.start()
    try:
        async with node_behind(control) as link:
            assert link.assigned is not None
            url = link.assigned.url
            async with pinned_client(url) as peers:
                with pytest.raises(PeerError) as broken:
                    body = {"pad": "x" * 2000}  # past the tampering point in one request
                    await peers.post_json(f"{url}/echo", body, 10)
            assert broken.value.details["failed_url"] == url
            assert link.echoed == []  # neither the altered nor a repeated request ran
    finally:
        await relay.close()
