"""A node's caps: idle sessions are closed, and sessions beyond the cap or the cache budget
are refused with SESSION_LIMIT instead of being served slowly or crashing the node."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from pathlib import Path

import aiohttp
import pytest
from links import node_http
from net_helpers import network_tokens

from sharedllm.node.local import local_nodes
from sharedllm.protocol import frames, session_keys
from sharedllm.protocol.frames import CONTENT_TYPE, TensorFrame
from sharedllm.protocol.session_keys import key_digest
from sharedllm.protocol.session_msgs import MAX_STEP_POSITIONS

pytestmark = pytest.mark.nodes
FRAME_HEADERS = {"Content-Type": CONTENT_TYPE}


@pytest.fixture(scope="module")
def node(model_home: Path):
    args = ("--idle-timeout", "1", "--max-sessions", "2", "--cache-mb", "8")
    with local_nodes(["20:30"], *args) as started:
        yield started[0]


def _open(url: str, model_id: str, max_length: int = 64) -> dict:
    return {
        "session_id": secrets.token_hex(8),
        "model_id": model_id,
        "route": [
            {"url": "http://a:1", "start": 0, "end": 20},
            {"url": url, "start": 20, "end": 30},
        ],
        "hop_index": 1,
        "max_length": max_length,
        "control": key_digest("limits-test-key"),
    }


async def _all_closed(http: aiohttp.ClientSession, url: str, within_s: float) -> bool:
    """Whether the node at ``url`` holds no session any more, within ``within_s``."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        async with http.get(url + "/info") as resp:
            if (await resp.json())["sessions_open"] == 0:
                return True
        await asyncio.sleep(0.5)
    return False


def test_caps_and_idle_timeout(node, manifest):
    async def run() -> None:
        async with node_http(node) as http:

            async def post(body: dict) -> tuple[int, dict]:
                async with http.post(node.url + "/sessions", json=body) as resp:
                    return resp.status, await resp.json()

            status, body = await post(_open(node.url, manifest.model_id, max_length=8000))
            assert (status, body["code"]) == (429, "SESSION_LIMIT")  # does not fit 8 MiB
            status, body = await post(_open(node.url, manifest.model_id, max_length=8193))
            assert (status, body["code"]) == (400, "CONTEXT_LENGTH_EXCEEDED")  # past 8192
            first = _open(node.url, manifest.model_id)
            assert (await post(first))[0] == 200
            assert (await post(_open(node.url, manifest.model_id)))[0] == 200
            status, body = await post(_open(node.url, manifest.model_id))
            assert (status, body["code"]) == (429, "SESSION_LIMIT")  # at --max-sessions 2

            # idle sessions are reaped after ~1 s
            assert await _all_closed(http, node.url, 10), "idle sessions were not closed"
            async with http.get(f"{node.url}/sessions/{first['session_id']}") as resp:
                assert resp.status == 404
                assert (await resp.json())["code"] == "SESSION_UNKNOWN"
            assert (await post(_open(node.url, manifest.model_id)))[0] == 200

    asyncio.run(run())


def test_a_step_longer_than_the_protocol_allows_is_refused_before_it_runs(node, manifest):
    """One client's 8,000-position step would hold the node's worker for seconds; a long
    prompt must come as several steps instead (the client splits it)."""
    hidden = manifest.hidden_size
    opened = _open(node.url, manifest.model_id, max_length=64)
    too_long = TensorFrame(
        "float32", (1, MAX_STEP_POSITIONS + 1, hidden),
        bytes(4 * hidden * (MAX_STEP_POSITIONS + 1)), {"step": 0, "start_pos": 0},
    )  # fmt: skip

    async def run() -> None:
        async with node_http(node) as http:
            for _ in range(40):  # the first test's sessions are reaped after ~1 s idle
                async with http.post(node.url + "/sessions", json=opened) as resp:
                    if resp.status != 429:
                        break
                await asyncio.sleep(0.25)
            assert resp.status == 200
            url = f"{node.url}/sessions/{opened['session_id']}/steps"
            body = frames.encode(too_long)
            async with http.post(url, data=body, headers=FRAME_HEADERS) as resp:
                assert resp.status == 400
                assert (await resp.json())["code"] == "STEP_TOO_LONG"
            state = f"{node.url}/sessions/{opened['session_id']}"
            async with http.get(state, headers={session_keys.HEADER: "limits-test-key"}) as resp:
                assert (await resp.json())["position"] == 0  # nothing was computed

    asyncio.run(run())


@pytest.fixture(scope="module")
def fair_node(model_home: Path):
    args = ("--max-sessions", "3", "--max-sessions-per-client", "1", "--unstepped-timeout", "2",
            "--cache-mb", "32", "--reclaim-idle", "1")  # fmt: skip
    with local_nodes(["0:30"], *args) as started:
        yield started[0]


def _whole(url: str, model_id: str) -> dict:
    body = _open(url, model_id)
    body["route"] = [{"url": url, "start": 0, "end": 30}]
    body["hop_index"] = 0
    return body


def test_a_client_holds_only_its_share_of_free_sessions_and_idle_opens_are_dropped(
    fair_node, manifest
):
    """Sixteen opened sessions once locked every honest client out, at no cost: a client
    address now holds its share, with a retry hint, and a session that never steps goes."""

    async def run() -> None:
        async with node_http(fair_node) as http:
            opened = _whole(fair_node.url, manifest.model_id)
            async with http.post(fair_node.url + "/sessions", json=opened) as resp:
                assert resp.status == 200
            second = _whole(fair_node.url, manifest.model_id)
            async with http.post(fair_node.url + "/sessions", json=second) as resp:
                body = await resp.json()
                assert (resp.status, body["code"]) == (429, "SESSION_LIMIT")
                assert "limit per client" in body["message"]
                assert int(resp.headers["Retry-After"]) >= 1
            # the first never stepped: dropped after ~2 s
            assert await _all_closed(http, fair_node.url, 15), "an unstepped session was kept"

    asyncio.run(run())


def test_a_client_refused_by_a_full_node_waits_for_a_slot_instead_of_failing(
    fair_node, manifest, store
):
    from sharedllm.client.generate import TextGenerator

    async def run() -> str:
        async with (
            node_http(fair_node) as http,
            TextGenerator([fair_node.url], store=store) as gen,
        ):
            # An open that never steps holds this client address's only slot for ~2 s.
            hold = _whole(fair_node.url, manifest.model_id)
            async with http.post(fair_node.url + "/sessions", json=hold) as resp:
                assert resp.status == 200
            began = time.monotonic()
            text = "".join([p async for p in gen.generate("Hi", max_tokens=3)])
            assert time.monotonic() - began >= 1.0  # it waited for the slot
            return text

    assert asyncio.run(run())


@pytest.fixture(scope="module")
def busy_node(model_home: Path):
    with local_nodes(["0:30"], "--max-sessions", "4") as started:
        yield started[0]


@pytest.mark.slow  # about 25 s; the default run stays under its 20 minutes
def test_a_long_replay_does_not_hold_the_worker_from_other_sessions(busy_node, manifest):
    """Proof of concept: a stranger opens a session and replays 400 one-position steps, each
    a full pass over the span. Replayed as one job, it held the node's only worker for the
    whole replay (2,000 steps once held it 25.6 s) and every other session's step waited
    behind it. Each replayed step is its own job now: an honest session's step, sent while
    the replay runs, is answered before the replay ends."""
    hidden, steps = manifest.hidden_size, 400
    key = {session_keys.HEADER: "limits-test-key"}
    stranger, honest = (
        _whole(busy_node.url, manifest.model_id),
        _whole(busy_node.url, manifest.model_id),
    )
    stranger["max_length"] = steps
    replay = TensorFrame(
        "float32", (1, steps, hidden), bytes(4 * hidden * steps), {"steps": [1] * steps}
    )
    one = TensorFrame("float32", (1, 1, hidden), bytes(4 * hidden), {"step": 0, "start_pos": 0})

    async def run() -> list[str]:
        done: list[str] = []
        async with node_http(busy_node) as http:
            for body in (stranger, honest):
                async with http.post(busy_node.url + "/sessions", json=body) as resp:
                    assert resp.status == 200, await resp.text()

            async def send(name: str, body: dict, path: str, frame: TensorFrame) -> None:
                url = f"{busy_node.url}/sessions/{body['session_id']}/{path}"
                headers = {**FRAME_HEADERS, **key}
                async with http.post(url, data=frames.encode(frame), headers=headers) as resp:
                    assert resp.status == 200, await resp.text()
                    await resp.read()
                done.append(name)

            replaying = asyncio.create_task(send("replay", stranger, "replay", replay))
            await asyncio.sleep(0.5)  # the replay is under way
            assert not replaying.done()
            await send("honest step", honest, "steps", one)
            await replaying
        return done

    assert asyncio.run(run()) == ["honest step", "replay"]


def _from(address: str, node) -> aiohttp.ClientSession:
    """An HTTP client of ``node`` whose connections leave from ``address`` (another loopback
    address is another client to the node's per-client limits)."""
    return node_http(node, local_addr=(address, 0))


async def _free_positions(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(url + "/info") as resp:
        return (await resp.json())["free_cache_tokens"]


def test_an_idle_hog_of_a_free_node_gives_way_to_a_newcomer(
    fair_node, manifest, client_model, generate_baseline
):
    """Proof of concept: a client opens one session reserving nearly all of a free node's
    cache, steps it once, and keeps it open by reading its state every few seconds: every
    other client was refused (SESSION_LIMIT) for as long as it liked, at no cost. Now reads
    do not keep a session open, and a newcomer within its fair share reclaims the hog's idle
    session: the newcomer's answer is generate's, and the hog's next step is told
    SESSION_RECLAIMED."""
    from reference import PROMPTS

    hidden = manifest.hidden_size
    key = {session_keys.HEADER: "limits-test-key"}

    async def run() -> tuple[list[int], int, dict]:
        async with _from("127.0.0.2", fair_node) as hog:
            total = await _free_positions(hog, fair_node.url)
            held = _whole(fair_node.url, manifest.model_id)
            held["max_length"] = total - 4  # room for no other answer
            async with hog.post(fair_node.url + "/sessions", json=held) as resp:
                assert resp.status == 200, await resp.text()
            steps = f"{fair_node.url}/sessions/{held['session_id']}/steps"

            async def step(i: int) -> tuple[int, bytes]:
                one = TensorFrame(
                    "float32", (1, 1, hidden), bytes(4 * hidden), {"step": i, "start_pos": i}
                )
                headers = {**FRAME_HEADERS, **key}
                async with hog.post(steps, data=frames.encode(one), headers=headers) as resp:
                    return resp.status, await resp.read()

            assert (await step(0))[0] == 200
            state = f"{fair_node.url}/sessions/{held['session_id']}"
            for _ in range(6):  # 1.5 s of reading its state, which once kept it alive
                async with hog.get(state, headers=key) as resp:
                    assert resp.status == 200
                await asyncio.sleep(0.25)
            tokens = await asyncio.to_thread(
                network_tokens, client_model, [fair_node.url], PROMPTS[0]
            )
            status, body = await step(1)
            return tokens, status, json.loads(body)

    tokens, status, body = asyncio.run(run())
    assert tokens == generate_baseline[PROMPTS[0]]
    assert (status, body["code"]) == (410, "SESSION_RECLAIMED")


def test_a_client_whose_idle_session_was_reclaimed_reopens_it_and_answers_the_same(
    fair_node, manifest, client_model, generate_baseline
):
    """A chat that pauses mid-answer while holding more than its share loses its session to
    a newcomer; at its next step the client opens it again on the same node (healthy, not
    excluded) once there is room, replays, and the answer is generate's, token for token."""
    from reference import PROMPTS

    from sharedllm.client.generate import TextGenerator

    prompt = PROMPTS[1]
    expected = generate_baseline[prompt]
    ids = client_model.prompt_ids(prompt)

    async def run() -> tuple[list[int], list]:
        async with (
            _from("127.0.0.2", fair_node) as newcomer,
            TextGenerator([fair_node.url], client_model=client_model) as gen,
        ):
            total = await _free_positions(newcomer, fair_node.url)
            # Reserve 0.6 of the node: over the half it is owed once a second client comes.
            answer = gen.token_ids(ids, int(0.6 * total) - len(ids))
            tokens = [await anext(answer) for _ in range(3)]
            await asyncio.sleep(1.5)  # the user pauses; the session sits idle
            opened = _whole(fair_node.url, manifest.model_id)
            opened["max_length"] = int(0.45 * total)  # within its half, not in the free 0.4
            async with newcomer.post(fair_node.url + "/sessions", json=opened) as resp:
                assert resp.status == 200, await resp.text()
            gone = f"{fair_node.url}/sessions/{opened['session_id']}"
            async with newcomer.delete(gone, headers={session_keys.HEADER: "limits-test-key"}):
                pass
            while len(tokens) < len(expected):
                tokens.append(await anext(answer))
            await answer.aclose()
            return tokens, gen.session.failovers

    tokens, failovers = asyncio.run(run())
    assert tokens == expected
    assert [(url, [h.url for h in route]) for url, route in failovers] == [
        (fair_node.url, [fair_node.url])
    ]
