"""Links pinned to a node's ed25519 key: the right node is reached over TLS 1.3, an impostor
is refused before a byte of the request leaves, and a path that alters or replays bytes
breaks the link instead of delivering them. Real sockets on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from nacl.signing import SigningKey

from sharedllm.errors import LinkUntrusted, PeerError
from sharedllm.peers import link_tls
from sharedllm.peers.link_tls import LinkTrust

SEED_A, SEED_B = bytes(range(32)), bytes(range(32, 64))


def run(test: Callable[[], Awaitable[None]]) -> Callable[[], None]:
    @functools.wraps(test)
    def sync() -> None:
        asyncio.run(asyncio.wait_for(test(), 30))  # type: ignore[arg-type]

    return sync


class Echo:
    """A TLS server that echoes POST bodies and counts what it handled."""

    def __init__(self, key: SigningKey) -> None:
        self.key = key
        self.handled: list[bytes] = []
        self.port = 0

    async def _echo(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.handled.append(body)
        return web.Response(body=body)

    @contextlib.asynccontextmanager
    async def serving(self, tls: bool = True) -> AsyncIterator[str]:
        app = web.Application()
        app.router.add_post("/echo", self._echo)
        runner = web.AppRunner(app)
        await runner.setup()
        ctx = link_tls.server_context(self.key) if tls else None
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            yield f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        finally:
            await runner.cleanup()


@contextlib.asynccontextmanager
async def tampering_proxy(
    port: int, tamper: Callable[[int, bytes], list[bytes]]
) -> AsyncIterator[str]:
    """A TCP relay to ``port`` on loopback that passes client-to-server chunks through
    ``tamper(index, chunk)`` (which returns the chunks to send instead)."""

    async def pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: bool
    ) -> None:
        index = 0
        try:
            while chunk := await reader.read(65536):
                for out in tamper(index, chunk) if upstream else [chunk]:
                    writer.write(out)
                index += 1
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.gather(pipe(client_r, server_w, True), pipe(server_r, client_w, False))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def post(trust: LinkTrust, url: str, body: bytes) -> bytes:
    ctx = await trust.context(url, timeout=5.0)
    async with aiohttp.ClientSession() as http, http.post(url + "/echo", data=body, ssl=ctx) as r:
        return await r.read()


def test_the_certificate_is_made_of_the_key_alone_and_carries_it() -> None:
    key = SigningKey(SEED_A)
    assert link_tls.certificate_pem(key) == link_tls.certificate_pem(SigningKey(SEED_A))
    assert link_tls.certificate_pem(key) != link_tls.certificate_pem(SigningKey(SEED_B))
    from cryptography import x509

    der = x509.load_pem_x509_certificate(link_tls.certificate_pem(key)).public_bytes(
        link_tls.serialization.Encoding.DER
    )
    assert link_tls.certificate_key(der, "test") == bytes(key.verify_key)


@run
async def test_the_expected_node_is_reached_over_tls() -> None:
    node = Echo(SigningKey(SEED_A))
    async with node.serving() as url:
        trust = LinkTrust()
        trust.expect(url, bytes(node.key.verify_key))
        body = bytes(range(256)) * 4096  # 1 MiB, about the size of a long step's frame
        assert await post(trust, url, body) == body
        assert await post(trust, url, b"again") == b"again"
        assert node.handled == [body, b"again"]


@run
async def test_an_impostor_is_refused_before_the_request_leaves() -> None:
    """Proof of concept: a node at the expected address with another key (a hijacked
    address, a poisoned route) gets nothing: the client stops at the key check."""
    impostor = Echo(SigningKey(SEED_B))
    async with impostor.serving() as url:
        trust = LinkTrust()
        trust.expect(url, bytes(SigningKey(SEED_A).verify_key))
        with pytest.raises(LinkUntrusted) as refused:
            await post(trust, url, b"My secret PIN is 4821")
        assert refused.value.details["failed_url"] == url
        assert "expected" in refused.value.message
    assert impostor.handled == []


@run
async def test_a_pinned_link_refuses_a_node_that_changed_its_key_behind_the_address() -> None:
    """Proof of concept: once pinned, a context refuses another key at the same address even
    if the probe is skipped (OpenSSL checks the certificate in every handshake)."""
    honest = Echo(SigningKey(SEED_A))
    async with honest.serving() as url:
        trust = LinkTrust()
        trust.expect(url, bytes(honest.key.verify_key))
        ctx = await trust.context(url, timeout=5.0)
    impostor = Echo(SigningKey(SEED_B))
    async with impostor.serving() as other, aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await http.post(other + "/echo", data=b"secret", ssl=ctx)
    assert impostor.handled == []


@run
async def test_bytes_altered_on_the_path_break_the_link_and_deliver_nothing() -> None:
    """Proof of concept: a relay that flips one bit of the request's ciphertext. The server
    refuses the record; the altered request is never handled."""
    node = Echo(SigningKey(SEED_A))
    async with node.serving():

        def flip_after_handshake(index: int, chunk: bytes) -> list[bytes]:
            if index >= 1 and len(chunk) > 100:  # application data, after the ClientHello
                chunk = chunk[:-20] + bytes([chunk[-20] ^ 1]) + chunk[-19:]
            return [chunk]

        async with tampering_proxy(node.port, flip_after_handshake) as address:
            url = "https://" + address
            trust = LinkTrust()
            trust.expect(url, bytes(node.key.verify_key))
            with pytest.raises((aiohttp.ClientError, ConnectionError)):
                await post(trust, url, b"x" * 5000)
    assert node.handled == []


@pytest.mark.parametrize("tls", [False, True], ids=["plaintext-poc", "tls"])
def test_bytes_replayed_on_the_path_run_nothing_twice_over_tls(tls: bool) -> None:
    """Proof of concept: a relay that sends each chunk of the request twice. Over plain HTTP
    the node runs the request twice (a step pushed twice, a job opened twice); over TLS the
    copy fails its record number and the request runs at most once."""
    node = Echo(SigningKey(SEED_A))

    async def scenario() -> None:
        async with node.serving(tls=tls):
            first_data = 1 if tls else 0  # over TLS, chunk 0 is the ClientHello

            def twice(index: int, chunk: bytes) -> list[bytes]:
                return [chunk, chunk] if index >= first_data else [chunk]

            async with tampering_proxy(node.port, twice) as address:
                url = ("https://" if tls else "http://") + address
                trust = LinkTrust()
                trust.expect(url, bytes(node.key.verify_key))
                with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                    await post(trust, url, b"step 7" * 1000)
                await asyncio.sleep(0.2)

    run(scenario)()
    if tls:
        assert len(node.handled) <= 1
    else:
        assert len(node.handled) == 2


@run
async def test_without_a_known_key_nothing_is_sent_unless_first_use_is_trusted() -> None:
    node = Echo(SigningKey(SEED_A))
    async with node.serving() as url:
        with pytest.raises(LinkUntrusted, match="no key is known"):
            await post(LinkTrust(), url, b"hello")
        assert node.handled == []

        said: list[str] = []
        trust = LinkTrust(trust_on_first_use=True, report=said.append)
        assert await post(trust, url, b"hello") == b"hello"
        assert said == [f"trusting {url} on first use: key 0x{bytes(node.key.verify_key).hex()}"]
        assert trust.pinned(url) == bytes(node.key.verify_key)


@run
async def test_plain_http_needs_no_context_and_a_dead_address_names_itself() -> None:
    trust = LinkTrust()
    assert await trust.context("http://127.0.0.1:9/x", timeout=1.0) is None
    trust.expect("https://127.0.0.1:9", bytes(SigningKey(SEED_A).verify_key))
    with pytest.raises(PeerError) as failed:
        await trust.context("https://127.0.0.1:9", timeout=2.0)
    assert failed.value.details["failed_url"] == "https://127.0.0.1:9"
    assert "TLS handshake failed" in failed.value.message


@run
async def test_a_malformed_address_is_refused_as_a_peer_failure() -> None:
    """Registered endpoints are peer data: ``http://[::1`` or a port out of range must end
    as the caller's usual error, not as a crash."""
    trust = LinkTrust()
    key = bytes(SigningKey(SEED_A).verify_key)
    for url in ("https://[::1", "https://h:99999"):
        trust.expect(url, key)
        with pytest.raises((PeerError, ValueError)):
            await trust.context(url, timeout=1.0)
