"""A node's move to other layers (``node/rebalancer.py``), in process with real span
workers: it waits for the old span's open sessions, refuses none of their steps, opens no
new session meanwhile, and calls the move off rather than drop a session."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer

from sharedllm.node.admission import AcceptAll
from sharedllm.node.app import build_app
from sharedllm.node.config import NodeConfig
from sharedllm.node.handlers import NodeState
from sharedllm.node.move_registration import FreePeers
from sharedllm.node.rebalancer import Rebalancer
from sharedllm.node.sessions import SessionManager
from sharedllm.node.span_worker import SpanWorker
from sharedllm.peers.http import PeerClient
from sharedllm.peers.probe import Candidate
from sharedllm.placement.rebalance import Move
from sharedllm.protocol.node_info import NodeInfo
from sharedllm.protocol.session_keys import key_digest
from sharedllm.protocol.session_msgs import Hop, OpenSession

pytestmark = pytest.mark.model


def _state(store, manifest, **config) -> NodeState:
    cfg = NodeConfig(rebalance_interval_s=1.0, **config)
    worker = SpanWorker(store, manifest, 0, 2)
    return NodeState(cfg, store, worker, SessionManager(worker, cfg), AcceptAll(), PeerClient())


def _builder(store, manifest):
    return lambda start, end: SpanWorker(store, manifest, start, end)


def _opening(sid: str, manifest) -> OpenSession:
    return OpenSession(sid, manifest.model_id, (Hop("http://n:1", 0, 2),), 0, 32)


def test_a_move_waits_for_the_open_session_and_then_serves_the_new_layers(store, manifest):
    async def run() -> None:
        st = _state(store, manifest)
        mover = Rebalancer(st, "http://self:1", _builder(store, manifest), FreePeers(()))
        session = st.sessions.open(_opening("s1", manifest))
        moving = asyncio.create_task(mover.move(Move(28, 30, "test")))
        await asyncio.sleep(1.0)
        assert st.moving_to == (28, 30) and not moving.done()  # waiting for the session
        row = np.zeros((1, manifest.hidden_size), dtype="<f4").tobytes()
        out = await st.worker.forward(session.cache, row, 1, 0, session.runner)
        assert len(out) == len(row)  # the old span still serves its session's steps
        await st.sessions.close("s1")
        assert await asyncio.wait_for(moving, 30) is True
        assert (st.worker.start, st.worker.end, st.moving_to) == (28, 30, None)
        assert st.sessions.worker is st.worker
        st.worker.close()
        await st.peers.close()

    asyncio.run(run())


def test_a_session_that_outlasts_the_drain_calls_the_move_off(store, manifest):
    async def run() -> None:
        st = _state(store, manifest)
        st.config = replace(st.config, move_drain_s=0.5)
        mover = Rebalancer(st, "http://self:1", _builder(store, manifest), FreePeers(()))
        session = st.sessions.open(_opening("s1", manifest))
        assert await mover.move(Move(28, 30, "test")) is False
        assert (st.worker.start, st.worker.end, st.moving_to) == (0, 2, None)
        assert st.sessions.get("s1") is session  # kept, and still served
        row = np.zeros((1, manifest.hidden_size), dtype="<f4").tobytes()
        await st.worker.forward(session.cache, row, 1, 0, session.runner)
        st.worker.close()
        await st.peers.close()

    asyncio.run(run())


def test_a_moving_node_says_so_at_info_and_opens_no_session(store, manifest):
    async def run() -> None:
        st = _state(store, manifest)
        st.moving_to = (28, 30)
        async with TestClient(TestServer(build_app(st))) as http:
            info = await (await http.get("/info")).json()
            assert (info["span"], info["moving_to"]) == ([0, 2], [28, 30])
            body = {
                "session_id": "moving-" + "ab" * 8, "model_id": manifest.model_id,
                "hop_index": 0, "route": [{"url": "http://n:1", "start": 0, "end": 2}],
                "max_length": 16, "control": key_digest("moving-test"),
            }  # fmt: skip
            answer = await http.post("/sessions", json=body)
            refusal = await answer.json()
            assert (answer.status, refusal["code"]) == (429, "NODE_MOVING"), refusal
            assert "28:30" in refusal["message"] and answer.headers["Retry-After"]
        st.worker.close()
        await st.peers.close()

    asyncio.run(run())


class _Registry:
    """A registration that records moves, and refuses them while the test says so."""

    def __init__(self, state: NodeState) -> None:
        self.state = state
        self.refusal: str | None = None
        self.recorded: list[tuple[tuple[int, int], tuple[int, int]]] = []

    async def peer_urls(self, trust) -> list[str]:
        return []

    async def move_refusal(self) -> str | None:
        return self.refusal

    async def moved(self, start: int, end: int) -> None:
        worker = self.state.worker
        self.recorded.append(((worker.start, worker.end), (start, end)))


def test_a_staked_move_records_the_span_before_serving_it_and_waits_out_the_terms_lock(
    store, manifest
):
    async def run() -> None:
        st = _state(store, manifest)
        registry = _Registry(st)
        mover = Rebalancer(st, "http://self:1", _builder(store, manifest), registry)
        registry.refusal = "the registry takes the next change of span in 9 min 58 s"
        assert await mover.check() is None  # no move is even planned
        registry.refusal = None
        assert await asyncio.wait_for(mover.move(Move(28, 30, "test")), 30) is True
        # Recorded on-chain while the node still served the old span, then served.
        assert registry.recorded == [((0, 2), (28, 30))]
        assert (st.worker.start, st.worker.end) == (28, 30)
        st.worker.close()
        await st.peers.close()

    asyncio.run(run())


def _announcing(key: str, moving_to: tuple[int, int], manifest) -> Candidate:
    info = NodeInfo(
        "0.1.0", manifest.model_id, 0, 2, manifest.num_layers, manifest.hidden_size, 0, 16,
        1000, 5.0, 0, public_key=key, moving_to=moving_to,
    )  # fmt: skip
    return Candidate(f"https://{key[2:6]}:1", info, 1.0)


@pytest.mark.parametrize(
    ("rival_key", "goes"), [("0x" + "aa" * 32, False), ("0x" + "cc" * 32, True)]
)
def test_of_two_nodes_announcing_one_target_only_the_lowest_key_moves(
    store, manifest, rival_key, goes
):
    """Two nodes that saw one gap within a probe of each other both announce; each looks
    again, and the one with the higher key calls its move off."""

    async def run() -> None:
        st = _state(store, manifest, public_key="0x" + "bb" * 32)
        mover = Rebalancer(st, "http://self:1", _builder(store, manifest), FreePeers(()))
        rival = _announcing(rival_key, (27, 30), manifest)

        async def peers() -> list[Candidate]:
            return [rival]

        mover._peers = peers  # the peer that announced an overlapping target meanwhile
        assert await mover.move(Move(28, 30, "test")) is goes
        assert (st.worker.start, st.worker.end) == ((28, 30) if goes else (0, 2))
        assert st.moving_to is None
        st.worker.close()
        await st.peers.close()

    asyncio.run(run())
