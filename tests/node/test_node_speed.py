"""The speed a node announces (``tokens_per_s`` at /info), which other nodes weigh it by when
they decide where to move: measured at start, kept current while idle, and from one-token
steps run alone only. Against a real span worker and the real model."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer

from sharedllm.node.admission import AcceptAll
from sharedllm.node.app import build_app
from sharedllm.node.config import NodeConfig
from sharedllm.node.handlers import NodeState
from sharedllm.node.sessions import SessionManager
from sharedllm.node.span_worker import SPEED_SAMPLES, SpanWorker
from sharedllm.peers.http import PeerClient
from sharedllm.protocol.node_info import parse_node_info

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def worker(store, manifest):
    span = SpanWorker(store, manifest, 0, 4)
    span.warm_up()
    yield span
    span.close()


def _row(manifest, length: int = 1) -> bytes:
    rng = np.random.default_rng(length)
    return rng.standard_normal((1, length, manifest.hidden_size)).astype("<f4").tobytes()


def test_the_start_measures_the_speed_from_the_fastest_of_several_lone_steps(worker):
    alone = list(worker._alone_ms)
    assert len(alone) == SPEED_SAMPLES  # the first, one-off steps are not counted
    assert worker.tokens_per_s == pytest.approx(1000.0 / min(alone))
    assert worker.tokens_per_s > 0


def test_batches_and_prompts_do_not_count_and_an_idle_look_adds_lone_steps(worker, manifest):
    async def run() -> None:
        before = list(worker._alone_ms)
        caches = [worker.new_cache(), worker.new_cache()]
        for cache in caches:
            await worker.forward(cache, _row(manifest, 6), 6, 0)  # a prompt: not counted
        rows = [_row(manifest, 1)] * 2
        batched = worker.batched_steps
        steps = (worker.forward(c, r, 1, 6) for c, r in zip(caches, rows, strict=True))
        await asyncio.gather(*steps)
        if worker.batched_steps > batched:  # the two ran as one batch: not a lone step
            assert list(worker._alone_ms) == before
        fastest = worker.tokens_per_s
        await worker.measure_speed()
        assert len(worker._alone_ms) >= len(before) + SPEED_SAMPLES
        assert worker.tokens_per_s >= fastest  # the fastest of more steps

    asyncio.run(run())


def test_info_announces_the_speed(worker, store, manifest):
    async def run() -> None:
        cfg = NodeConfig()
        st = NodeState(cfg, store, worker, SessionManager(worker, cfg), AcceptAll(), PeerClient())
        async with TestClient(TestServer(build_app(st))) as http:
            info = parse_node_info(await (await http.get("/info")).json())
        assert info.tokens_per_s == round(worker.tokens_per_s, 2) > 0
        await st.peers.close()

    asyncio.run(run())
