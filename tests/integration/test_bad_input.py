"""Bad requests to a real node process: each gets a 4xx with a stable code, and a session that
was open before keeps working on the same node."""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import struct
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from links import node_http

from sharedllm.node.local import local_nodes
from sharedllm.protocol import frames, session_keys
from sharedllm.protocol.frames import TensorFrame
from sharedllm.protocol.session_keys import key_digest

pytestmark = pytest.mark.nodes


HIDDEN = 576
# Raw sessions in these tests are opened with this key's digest and steered with the key.
SESSION_KEY = "test-session-key"
KEY_HEADERS = {session_keys.HEADER: SESSION_KEY}


@pytest.fixture(scope="module")
def node(model_home: Path):
    with local_nodes(["0:10"], "--max-body-mb", "1") as started:
        yield started[0]


def _open_body(url: str, manifest, sid: str, start: int = 0, end: int = 10) -> dict:
    return {
        "session_id": sid,
        "model_id": manifest.model_id,
        "route": [{"url": url, "start": start, "end": end}],
        "hop_index": 0,
        "max_length": 64,
        "control": key_digest(SESSION_KEY),
    }


def _hidden(tokens: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, tokens, HIDDEN)).astype(np.float32)


def _step_frame(array: np.ndarray, step: int, start_pos: int) -> bytes:
    return frames.encode(TensorFrame.from_numpy(array, {"step": step, "start_pos": start_pos}))


def _raw_frame(header: dict, data: bytes) -> bytes:
    head = json.dumps(header).encode()
    return frames.MAGIC + struct.pack("<I", len(head)) + head + data


class Client:
    """A raw HTTP client plus one healthy session stepped between the bad requests."""

    def __init__(self, http: aiohttp.ClientSession, url: str, manifest) -> None:
        self.http, self.url, self.manifest = http, url, manifest
        self.sid = "good-" + secrets.token_hex(8)
        self.steps = 0
        self.position = 0

    async def call(self, method: str, path: str, *, body: bytes | None = None, js=None):
        headers = {"Content-Type": frames.CONTENT_TYPE} if body is not None else {}
        headers |= KEY_HEADERS
        async with self.http.request(
            method, self.url + path, data=body, json=js, headers=headers
        ) as resp:
            raw = await resp.read()
            return resp.status, resp.content_type, raw

    async def open_good(self) -> None:
        status, _, raw = await self.call(
            "POST", "/sessions", js=_open_body(self.url, self.manifest, self.sid)
        )
        assert status == 200, raw

    async def good_step(self) -> None:
        """The healthy session advances one step and its output can be collected."""
        tokens = 3 if self.steps == 0 else 1
        frame = _step_frame(_hidden(tokens, self.steps), self.steps, self.position)
        status, _, raw = await self.call("POST", f"/sessions/{self.sid}/steps", body=frame)
        assert status == 200, raw
        status, ctype, raw = await self.call("GET", f"/sessions/{self.sid}/outputs/{self.steps}")
        assert status == 200 and ctype == frames.CONTENT_TYPE
        out = frames.decode(raw)
        assert out.shape == (1, tokens, HIDDEN) and out.meta["step"] == self.steps
        self.steps += 1
        self.position += tokens


async def _expect(client: Client, status: int, code: str, method: str, path: str, **kw) -> None:
    got, ctype, raw = await client.call(method, path, **kw)
    assert (got, ctype) == (status, "application/json"), raw[:300]
    body = json.loads(raw)
    assert body["code"] == code and body["message"]
    await client.good_step()


def test_bad_requests_are_refused_and_other_sessions_keep_working(node, manifest):
    async def run() -> None:
        async with node_http(node) as http:
            c = Client(http, node.url, manifest)
            await c.open_good()
            await c.good_step()

            sid = "bad-" + secrets.token_hex(8)
            assert (await c.call("POST", "/sessions", js=_open_body(c.url, manifest, sid)))[
                0
            ] == 200
            steps = f"/sessions/{sid}/steps"
            meta = {"step": 0, "start_pos": 0}
            ok = _hidden(2, 7)

            half = ok.astype(np.float16)
            await _expect(
                c,
                400,
                "BAD_DTYPE",
                "POST",
                steps,
                body=frames.encode(TensorFrame.from_numpy(half, meta)),
            )
            await _expect(
                c,
                400,
                "BAD_DTYPE",
                "POST",
                steps,
                body=_raw_frame(
                    {"dtype": "int8", "shape": [1, 2, HIDDEN], "meta": meta}, bytes(2 * HIDDEN)
                ),
            )
            narrow = _hidden(2, 8)[:, :, :100]
            await _expect(
                c,
                400,
                "BAD_SHAPE",
                "POST",
                steps,
                body=frames.encode(TensorFrame.from_numpy(narrow, meta)),
            )
            await _expect(
                c,
                400,
                "BAD_LENGTH",
                "POST",
                steps,
                body=_raw_frame(
                    {"dtype": "float32", "shape": [1, 2, HIDDEN], "meta": meta}, ok.tobytes()[:-4]
                ),
            )
            for bad in (math.nan, math.inf, -math.inf):
                poisoned = ok.copy()
                poisoned[0, 1, 5] = bad
                await _expect(c, 400, "NON_FINITE", "POST", steps, body=_step_frame(poisoned, 0, 0))
            await _expect(c, 400, "BAD_FRAME", "POST", steps, body=b"not a frame at all")
            # A free node's recursion limit is 1,000: meta nested 5,000 deep was a 500 with a
            # RecursionError traceback; a shape of 3,000-digit integers broke the message.
            deep = '{"dtype":"float32","shape":[1,2,576],"meta":{"x":' + "[" * 5000
            deep += "]" * 5000 + "}}"
            huge = '{"dtype":"float32","shape":[1,' + "9" * 3000 + ',576],"meta":{}}'
            for header in (deep, huge):
                raw = frames.MAGIC + struct.pack("<I", len(header)) + header.encode()
                await _expect(c, 400, "BAD_FRAME", "POST", steps, body=raw + ok.tobytes())
            await _expect(
                c,
                400,
                "BAD_REQUEST",
                "POST",
                steps,
                body=_step_frame(ok, 0, 0).replace(b'"step"', b'"stop"'),
            )
            await _expect(c, 409, "STEP_OUT_OF_ORDER", "POST", steps, body=_step_frame(ok, 3, 0))
            await _expect(
                c, 413, "BODY_TOO_LARGE", "POST", steps, body=_step_frame(_hidden(600, 1), 0, 0)
            )  # 1.4 MB > 1 MB
            await _expect(
                c,
                404,
                "SESSION_UNKNOWN",
                "POST",
                "/sessions/nosuchsession/steps",
                body=_step_frame(ok, 0, 0),
            )

            assert (await c.call("DELETE", f"/sessions/{sid}"))[0] == 200
            await _expect(c, 404, "SESSION_UNKNOWN", "POST", steps, body=_step_frame(ok, 0, 0))
            await _expect(c, 404, "SESSION_UNKNOWN", "GET", f"/sessions/{sid}/outputs/0")

            other = "bad2-" + secrets.token_hex(8)
            await _expect(
                c,
                400,
                "SPAN_NOT_SERVED",
                "POST",
                "/sessions",
                js=_open_body(c.url, manifest, other, 0, 15),  # past the node's 0:10
            )
            wrong = {**_open_body(c.url, manifest, other), "model_id": "0x" + "ab" * 32}
            await _expect(c, 400, "WRONG_MODEL", "POST", "/sessions", js=wrong)
            missing = _open_body(c.url, manifest, other)
            del missing["route"]
            await _expect(c, 400, "BAD_REQUEST", "POST", "/sessions", js=missing)
            await _expect(
                c,
                400,
                "BAD_REQUEST",
                "POST",
                "/sessions",
                js={**_open_body(c.url, manifest, other), "extra": 1},
            )

    asyncio.run(run())
    assert node.process.poll() is None


def test_info_and_shards(node, manifest, store):
    async def run() -> None:
        async with node_http(node) as http:
            async with http.get(node.url + "/info") as resp:
                info = await resp.json()
            assert info["model_id"] == manifest.model_id and info["span"] == [0, 10]
            assert info["ms_per_token"] > 0 and info["free_cache_tokens"] > 0
            digest = manifest.layer_shards[3]
            async with http.get(f"{node.url}/shards/{digest}") as resp:
                assert resp.status == 200
                assert await resp.read() == store.read_shard(digest)
            async with http.get(f"{node.url}/shards/{'0' * 64}") as resp:
                assert resp.status == 404 and (await resp.json())["code"] == "SHARD_MISSING"

    asyncio.run(run())


def test_only_the_sessions_client_can_read_steer_or_close_it(node, manifest):
    """Every hop sees the session id. It once sufficed to read hop 0's inputs (the prompt's
    embeddings, hence the prompt), the last hop's outputs (the answer), to re-point a hop to
    a proxy or to close the session; now each needs the key the client holds for that hop."""
    sid = "keyed-" + secrets.token_hex(8)
    reroute = {"route": _open_body(node.url, manifest, sid)["route"], "hop_index": 0}
    attempts = [
        ("GET", f"/sessions/{sid}/history?which=inputs", None),
        ("GET", f"/sessions/{sid}/outputs/0", None),
        ("POST", f"/sessions/{sid}/route", reroute),
        ("GET", f"/sessions/{sid}", None),
        ("DELETE", f"/sessions/{sid}", None),
    ]

    async def run() -> None:
        async with node_http(node) as http:
            c = Client(http, node.url, manifest)
            c.sid = sid
            await c.open_good()
            await c.good_step()
            for keys in ({}, {session_keys.HEADER: "not-the-key"}):
                for method, path, js in attempts:
                    async with http.request(method, node.url + path, json=js, headers=keys) as r:
                        assert r.status == 403, (path, await r.text())
                        assert (await r.json())["code"] == "SESSION_FORBIDDEN"
            await c.good_step()  # the session was neither closed nor re-pointed
            for method, path, js in attempts:
                status, _, raw = await c.call(method, path, js=js)
                assert status == 200, (path, raw[:200])

    asyncio.run(run())
