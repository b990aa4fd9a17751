"""A hop that freezes mid-answer (SIGSTOP: its sockets stay open, nothing answers) is the
one replaced: the hop before it times out first and names it, so the client does not blame
an honest hop for another's stall, and the text does not change."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from reference import NEW_TOKENS, PROMPTS

from sharedllm.client.generate import TextGenerator
from sharedllm.node.local import local_nodes

pytestmark = [pytest.mark.nodes, pytest.mark.slow]

STEP_TIMEOUT_S = 4.0
FREEZE_AFTER = 6


@pytest.fixture(scope="module")
def nodes(model_home: Path):
    spans = ["0:10", "10:20", "20:30", "10:20", "20:30"]
    with local_nodes(spans, "--step-timeout", str(STEP_TIMEOUT_S)) as started:
        yield started


@pytest.mark.parametrize("hop", [1, 2])
def test_a_frozen_hop_is_the_one_replaced(nodes, client_model, generate_baseline, hop) -> None:
    prompt = PROMPTS[4]
    frozen = []

    async def run():
        urls = [n.url for n in nodes]
        async with TextGenerator(
            urls, client_model=client_model, step_timeout_s=STEP_TIMEOUT_S
        ) as gen:
            tokens = []
            async for token in gen.token_ids(client_model.prompt_ids(prompt), NEW_TOKENS):
                tokens.append(token)
                if len(tokens) == FREEZE_AFTER:
                    frozen.append(next(n for n in nodes if n.url == gen.session.route[hop].url))
                    os.kill(frozen[0].pid, signal.SIGSTOP)
            return tokens, gen.session

    try:
        tokens, session = asyncio.run(run())
        assert frozen, "the answer was long enough to freeze a hop mid-way"
        assert tokens == generate_baseline[prompt]
        assert [failed for failed, _ in session.failovers] == [frozen[0].url]
        assert session.route[hop].url != frozen[0].url
    finally:
        for node in frozen:
            os.kill(node.pid, signal.SIGCONT)
