"""A hop that freezes mid-answer (SIGSTOP: its sockets stay open, nothing answers) or holds a
step too long is the one replaced, within seconds, with every setting at its default: the
hop before it names it (its probes go unanswered, or the step's budget ran out), so the
client never blames an honest hop for another's stall, and the text does not change."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from reference import NEW_TOKENS, PROMPTS

from sharedllm.client.directory import NodeDirectory
from sharedllm.client.generate import TextGenerator
from sharedllm.node.local import local_nodes
from sharedllm.peers.stall_watch import WATCH

pytestmark = [pytest.mark.nodes, pytest.mark.slow]

FREEZE_AFTER = 6
DEFAULT_STEP_TIMEOUT_S = 30.0  # the client's and the nodes' default


@pytest.fixture(scope="module")
def nodes(model_home: Path):
    with local_nodes(["0:10", "0:10", "10:20", "10:20", "20:30", "20:30"]) as started:
        yield started


class LateJoiners(NodeDirectory):
    """The first route can only use ``first``; every node is known from the next plan on."""

    def __init__(self, first: list[str], later: list[str]) -> None:
        self.first, self.later, self.plans = first, later, 0

    async def endpoints(self) -> list[str]:
        self.plans += 1
        return self.first if self.plans == 1 else self.first + self.later

    async def keys(self) -> Mapping[str, frozenset[bytes]]:
        return {}


@pytest.mark.parametrize("hop", [0, 1, 2])
def test_a_frozen_hop_is_named_within_seconds(nodes, client_model, generate_baseline, hop) -> None:
    prompt = PROMPTS[4]
    frozen = []

    async def run():
        async with TextGenerator([n.url for n in nodes], client_model=client_model) as gen:
            tokens, gaps, last = [], [], time.monotonic()
            async for token in gen.token_ids(client_model.prompt_ids(prompt), NEW_TOKENS):
                tokens.append(token)
                now = time.monotonic()
                gaps.append(now - last)
                last = now
                if len(tokens) == FREEZE_AFTER:
                    frozen.append(next(n for n in nodes if n.url == gen.session.route[hop].url))
                    os.kill(frozen[0].pid, signal.SIGSTOP)
            return tokens, gaps, gen.session

    try:
        tokens, gaps, session = asyncio.run(run())
        assert frozen, "the answer was long enough to freeze a hop mid-way"
        assert tokens == generate_baseline[prompt]
        assert [failed for failed, _ in session.failovers] == [frozen[0].url]
        assert session.route[hop].url != frozen[0].url
        # Found by its silence (at most WATCH.worst_s, 5 s, then a replay), long before a
        # step timeout (30 s) would have found it.
        stalled = max(gaps[FREEZE_AFTER:])
        print(f"hop {hop} frozen: the answer stood still for {stalled:.1f} s")
        assert WATCH.worst_s < DEFAULT_STEP_TIMEOUT_S / 3
        assert stalled < DEFAULT_STEP_TIMEOUT_S / 2, gaps
    finally:
        for node in frozen:
            os.kill(node.pid, signal.SIGCONT)


def test_a_hop_that_holds_a_step_past_its_budget_is_named(
    nodes, client_model, generate_baseline
) -> None:
    """Proof of concept: the nodes once waited their own 30 s for the next hop, whatever the
    client waited; a client waiting 4 s gave up first and blamed hop 0 for hop 1's delay.
    The slow hop answers every probe: only the step's budget, handed down, names it."""
    prompt = PROMPTS[4]
    by_span = {n.span: n for n in nodes}
    with local_nodes(["10:20"], "--link-delay-ms", "6000") as (slow,):
        first = [by_span[(0, 10)].url, slow.url, by_span[(20, 30)].url]
        directory = LateJoiners(first, [n.url for n in nodes])

        async def run():
            async with TextGenerator(
                directory, client_model=client_model, step_timeout_s=4.0
            ) as gen:
                ids = client_model.prompt_ids(prompt)
                tokens = [t async for t in gen.token_ids(ids, NEW_TOKENS)]
                return tokens, gen.session

        began = time.monotonic()
        tokens, session = asyncio.run(run())
    assert [failed for failed, _ in session.failovers] == [slow.url]
    assert session.failovers[0][1][1].url != slow.url
    assert tokens == generate_baseline[prompt]
    assert time.monotonic() - began < DEFAULT_STEP_TIMEOUT_S
