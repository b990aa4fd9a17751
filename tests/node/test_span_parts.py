"""A node serving 0:6 runs sessions over any contiguous part of it: the part shares the
span's weights, computes what a runner loaded for just those layers computes, and batches
only with sessions over the same layers. Against a real span worker and the real model."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch

from sharedllm.errors import ModelError
from sharedllm.model.span import SpanRunner
from sharedllm.node.config import NodeConfig
from sharedllm.node.sessions import SessionManager
from sharedllm.node.span_worker import SpanWorker
from sharedllm.protocol.session_msgs import Hop, OpenSession

pytestmark = pytest.mark.model

PROMPT = 7
DECODE = 4


@pytest.fixture(scope="module")
def worker(store, manifest):
    span = SpanWorker(store, manifest, 0, 6, batch_wait_ms=50)
    yield span
    span.close()


def _rows(manifest, length: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((1, length, manifest.hidden_size)).astype("<f4").tobytes()


def _array(manifest, data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f4").reshape(-1, manifest.hidden_size)


def test_a_part_shares_the_spans_weights_and_computes_as_its_own_runner(worker, store, manifest):
    part = worker.part(2, 5)
    assert worker.part(2, 5) is part and worker.part(0, 6) is worker.runner
    assert [id(x) for x in part.layers] == [id(x) for x in worker.runner.layers[2:5]]
    alone = SpanRunner(store, manifest, 2, 5)
    data = _rows(manifest, PROMPT, 1)
    cache = part.new_cache()
    got = asyncio.run(worker.forward(cache, data, PROMPT, 0, part))
    hidden = torch.from_numpy(_array(manifest, data).copy())[None]
    want = alone.forward(hidden, alone.new_cache(), 0)
    assert np.array_equal(_array(manifest, got), want[0].numpy())
    assert part.cached_length(cache) == PROMPT


def test_sessions_batch_only_with_sessions_over_the_same_layers(worker, manifest):
    """Two sessions on 2:5 and one on all of 0:6 decode at once: the two run as one batch,
    the third alone, and every output is what a lone step gives (to a batch's rounding)."""
    part = worker.part(2, 5)
    runners = [part, part, worker.runner]
    caches = [r.new_cache() for r in runners]
    lone = [r.new_cache() for r in runners]

    async def run() -> list[tuple[bytes, bytes]]:
        for i, (r, c, solo) in enumerate(zip(runners, caches, lone, strict=True)):
            prompt = _rows(manifest, PROMPT, 10 + i)
            await worker.forward(c, prompt, PROMPT, 0, r)
            await worker.forward(solo, prompt, PROMPT, 0, r)
        pairs = []
        for step in range(DECODE):
            rows = [_rows(manifest, 1, 100 * step + i) for i in range(3)]
            together = await asyncio.gather(*(
                worker.forward(c, row, 1, PROMPT + step, r)
                for r, c, row in zip(runners, caches, rows, strict=True)
            ))  # fmt: skip
            for r, solo, row, out in zip(runners, lone, rows, together, strict=True):
                pairs.append((out, await worker.forward(solo, row, 1, PROMPT + step, r)))
        return pairs

    before = worker.batched_steps
    pairs = asyncio.run(run())
    assert worker.batched_steps - before == 2 * DECODE  # the two part sessions, every step
    for together, alone in pairs:  # rounding differs with the batch's shape (and the CPU)
        scale = max(1.0, float(np.abs(_array(manifest, alone)).max()))
        assert np.abs(_array(manifest, together) - _array(manifest, alone)).max() < 1e-4 * scale


def test_layers_outside_the_span_are_refused(worker):
    for start, end in ((4, 7), (5, 5), (-1, 3)):
        with pytest.raises(ModelError) as err:
            worker.part(start, end)
        assert err.value.code == "BAD_SPAN"


def test_a_session_over_a_part_reserves_the_cache_of_its_layers_only(worker, manifest):
    sessions = SessionManager(worker, NodeConfig())
    whole = OpenSession("whole", manifest.model_id, (Hop("http://n:1", 0, 6),), 0, 64)
    part = OpenSession("part", manifest.model_id, (Hop("http://n:1", 0, 2),), 0, 64)
    a, b = sessions.open(whole), sessions.open(part)
    history = 2 * manifest.hidden_size * 4
    assert a.reserved_bytes == 64 * (worker.kv_bytes_per_token(6) + history)
    assert b.reserved_bytes == 64 * (worker.kv_bytes_per_token(2) + history)
    assert b.runner is worker.part(0, 2)
