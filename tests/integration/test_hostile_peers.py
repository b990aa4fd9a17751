"""A stranger's requests against a real paid node: nothing crashes it, nothing gets a 500.

A paid node imports eth-account, whose py_ecc raises Python's recursion limit to 100,000; a
198 KB body of nested brackets once made such a node exit with signal 11. Each attack keeps
its proof of concept here, sent to a real node process, next to the check that it is refused.
"""

from __future__ import annotations

import asyncio
import json
import random
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from links import call_json, node_http, pinned_ssl

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.errors import PeerError
from sharedllm.localnet import LocalNetwork
from sharedllm.peers.http import PeerClient
from sharedllm.protocol import frames, session_keys
from sharedllm.protocol.frames import TensorFrame
from sharedllm.protocol.session_keys import key_digest
from sharedllm.protocol.session_msgs import Hop

pytestmark = [pytest.mark.chain, pytest.mark.model, pytest.mark.nodes]

NESTED = b"[" * 99_000 + b"]" * 99_000
FUZZ_CASES = 2000


SESSION = "s" * 16
KEY = "hostile-test-key"  # this test's session key for the paid session it opens


@pytest.fixture(scope="module")
def net(model_home):
    with LocalNetwork(spans=((0, 30),), node_accounts=(7,)) as network:
        network.chain.market.deposit(dev_account(6), WEI_PER_SHARE, network.chain.token)
        yield network


@pytest.fixture(scope="module")
def node(net):
    return net.nodes[0]


@pytest.fixture(scope="module")
def paid_session(net, node, manifest) -> str:
    """A real paid session on the node (a signed, prepaid job), so that frames sent to it
    are parsed by a process whose recursion limit eth-account raised to 100,000."""
    route = (Hop(node.url, 0, 30),)
    paid = asyncio.run(net.payer(dev_account(6)).job_for(manifest.model_id, route, 64))
    job, signature = paid.signed.wire()
    body = {**_open_body(node.url, manifest.model_id), "job": job, "signature": signature,
            "control": key_digest(KEY)}  # fmt: skip
    status, reply = call_json(node.url + "/sessions", pinned_ssl(node), "POST", body)
    assert status == 200, reply
    return SESSION


def _open_body(url: str, model_id: str) -> dict:
    return {
        "session_id": SESSION,
        "model_id": model_id,
        "route": [{"url": url, "start": 0, "end": 30}],
        "hop_index": 0,
        "max_length": 64,
    }


def _frame_with_header(header: bytes, data: bytes = bytes(4 * 576)) -> bytes:
    return frames.MAGIC + struct.pack("<I", len(header)) + header + data


async def _send(http, method, url, body: bytes, ctype: str) -> tuple[int, dict]:
    headers = {"Content-Type": ctype, session_keys.HEADER: KEY}
    async with http.request(method, url, data=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


def test_nested_json_big_numbers_and_bad_urls_get_a_4xx_and_the_node_lives(
    node, manifest, paid_session
):
    url = node.url
    opened = _open_body(url, manifest.model_id)
    bad_url = {**opened, "route": [{"url": "http://[::1", "start": 0, "end": 30}]}
    deep_meta = b'{"dtype":"float32","shape":[1,1,576],"meta":{"x":' + b"[" * 5000
    deep_meta += b"]" * 5000 + b"}}"
    big_shape = b'{"dtype":"float32","shape":[1,' + b"9" * 3000 + b'],"meta":{}}'
    attacks = [
        ("POST", "/sessions", NESTED, "application/json", 400),
        ("POST", f"/sessions/{paid_session}/route", NESTED, "application/json", 400),
        ("POST", "/jobs/0x" + "ab" * 32 + "/receipts", NESTED, "application/json", 400),
        ("POST", "/sessions", json.dumps(bad_url).encode(), "application/json", 400),
        ("POST", "/sessions", b" " * (63 << 20), "application/json", 413),
    ]

    async def run() -> None:
        async with node_http(node) as http:
            for method, path, body, ctype, status in attacks:
                got, answer = await _send(http, method, url + path, body, ctype)
                assert got == status if status else 400 <= got < 500, (path, answer)
                assert "Traceback" not in json.dumps(answer)
            # Inside a frame's meta, and a shape too big to print, on the real paid session.
            for header, code in ((deep_meta, "BAD_FRAME"), (big_shape, "BAD_FRAME")):
                got, answer = await _send(
                    http, "POST", f"{url}/sessions/{paid_session}/steps",
                    _frame_with_header(header), frames.CONTENT_TYPE,
                )  # fmt: skip
                assert (got, answer["code"]) == (400, code), answer
            began = time.monotonic()
            async with http.get(url + "/info") as resp:
                assert resp.status == 200
            assert time.monotonic() - began < 5

    asyncio.run(run())
    assert node.process.poll() is None, node.log[-20:]


def test_a_seeded_mutation_fuzzer_finds_no_500(node, manifest, paid_session):
    """Valid bodies and frames, mutated: byte flips, cuts, repeats and bracket floods."""
    rng = random.Random(1234)
    opened = json.dumps(_open_body(node.url, manifest.model_id)).encode()
    frame = frames.encode(
        TensorFrame("float32", (1, 2, 576), bytes(8 * 576), {"step": 0, "start_pos": 0})
    )
    seeds = [
        ("/sessions", opened, "application/json"),
        (f"/sessions/{paid_session}/route", opened, "application/json"),
        (f"/sessions/{paid_session}/steps", frame, frames.CONTENT_TYPE),
        ("/jobs/0x" + "cd" * 32 + "/receipts", b'{"receipts": [["00"]]}', "application/json"),
    ]

    def mutate(body: bytes) -> bytes:
        data = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            kind = rng.randrange(5)
            at = rng.randrange(len(data) + 1)
            if kind == 0 and data:
                data[min(at, len(data) - 1)] = rng.randrange(256)
            elif kind == 1:
                del data[at:]
            elif kind == 2:
                data[at:at] = rng.choice([b"[", b"{", b'"', b"9"]) * rng.randint(1, 3000)
            elif kind == 3:
                data[at:at] = data[at : at + rng.randint(1, 64)] * rng.randint(1, 50)
            else:
                data[at:at] = rng.choice([b"NaN", b"-0", b"1e999", b"\\ud800", b"\x00", b"\xff"])
        return bytes(data)

    statuses: dict[int, int] = {}

    async def run() -> None:
        async with node_http(node) as http:
            for _ in range(FUZZ_CASES):
                path, body, ctype = rng.choice(seeds)
                headers = {"Content-Type": ctype, session_keys.HEADER: KEY}
                async with http.post(node.url + path, data=mutate(body), headers=headers) as resp:
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1
                    if resp.status >= 500:
                        pytest.fail(f"{path}: {resp.status} {await resp.text()}")

    asyncio.run(run())
    assert sum(statuses.values()) == FUZZ_CASES and max(statuses) < 500
    assert statuses.get(404, 0) < FUZZ_CASES // 10  # the mutations reached the parsers
    assert node.process.poll() is None


def test_a_client_survives_a_node_that_answers_nested_json_or_a_huge_body():
    """The client side of the same attack: a hostile node's /info must not kill the client."""
    import eth_account  # noqa: F401 -- as in a paying client: the recursion limit is 100,000

    async def nested(_: web.Request) -> web.Response:
        return web.Response(body=NESTED, content_type="application/json")

    async def huge(_: web.Request) -> web.StreamResponse:
        return web.Response(body=b" " * (2 << 20), content_type="application/json")

    async def run() -> list[str]:
        app = web.Application()
        app.router.add_get("/info", nested)
        app.router.add_get("/big", huge)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            errors = []
            async with PeerClient() as peers:
                for path in ("/info", "/big"):
                    with pytest.raises(PeerError) as err:
                        await peers.get_json(f"http://127.0.0.1:{server.port}{path}", 10)
                    errors.append(err.value.message)
            return errors
        finally:
            await server.close()

    deep, big = asyncio.run(run())
    assert "nested 99000 deep" in deep
    assert "more than" in big


def test_a_node_raises_its_open_file_limit_so_idle_sockets_cannot_exhaust_it(node):
    """At a soft limit of 1,024, about a thousand idle sockets made accept() fail."""
    script = (
        "import resource as r; soft, hard = r.getrlimit(r.RLIMIT_NOFILE); "
        "r.setrlimit(r.RLIMIT_NOFILE, (1024, hard)); "
        "from sharedllm.node.app import raise_open_file_limit; raise_open_file_limit(); "
        "print(*r.getrlimit(r.RLIMIT_NOFILE))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    soft, hard = (int(x) for x in out.stdout.split())
    assert soft == min(hard, 65536) > 1024, out.stderr
    limits = Path(f"/proc/{node.pid}/limits").read_text()  # and the running node did so too
    line = next(x for x in limits.splitlines() if x.startswith("Max open files"))
    assert int(line.split()[3]) >= min(int(line.split()[4]), 65536)


def test_one_address_cannot_hold_more_connections_than_its_cap(net):
    """Proof of concept against a real node process: connections opened and held by one
    address. Past ``--max-connections-per-peer`` the node answers 429 at once, and once they
    close it serves that address again. (Last in this module: it restarts the node.)"""
    net.nodes[0].kill()
    node = net.restart(0, extra=("--max-connections-per-peer", "8"))
    port = int(node.url.rsplit(":", 1)[1])
    link = pinned_ssl(node)

    async def run() -> tuple[bytes, int]:
        await asyncio.sleep(0.2)  # pinned_ssl's own connection has closed
        # The cap counts a connection from its completed TLS handshake.
        held = [await asyncio.open_connection("127.0.0.1", port, ssl=link) for _ in range(8)]
        await asyncio.sleep(0.2)
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=link)
        writer.write(b"GET /info HTTP/1.1\r\nHost: x\r\n\r\n")
        refused = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        for _, w in held:
            w.close()
        await asyncio.sleep(0.2)
        return refused, call_json(node.url + "/info", link)[0]

    refused, after = asyncio.run(run())
    assert refused.startswith(b"HTTP/1.1 429") and b"TOO_MANY_CONNECTIONS" in refused
    assert after == 200
