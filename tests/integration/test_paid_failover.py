"""A paid answer survives a hop dying mid-answer: the client settles the old job, signs one
for the new route, and the text is the same."""

from __future__ import annotations

import asyncio
import time

import pytest

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.client.generate import TextGenerator
from sharedllm.localnet import LocalNetwork

pytestmark = [pytest.mark.chain, pytest.mark.model]

PROMPT = "What is the capital of France?"
TOKENS = 24


async def _answer(net: LocalNetwork, client, kill_after: int | None) -> tuple[list[int], list]:
    payer = net.payer(client)
    async with TextGenerator(payer.directory, payer=payer, store=net.store) as gen:
        ids = gen.model.prompt_ids(PROMPT)
        tokens = []
        async for token in gen.token_ids(ids, TOKENS):
            tokens.append(token)
            if len(tokens) == kill_after:
                last = gen.session.route[-1].url
                victim = next(n for n in net.nodes if n is not None and n.url == last)
                victim.kill()
    return tokens, payer.jobs


def test_paid_answer_survives_a_killed_hop(model_home) -> None:
    spans = [(0, 10), (10, 20), (20, 30), (20, 30)]
    with LocalNetwork(spans, node_accounts=(1, 2, 3, 4)) as net:
        client = dev_account(5)
        net.chain.market.deposit(client, 1 * WEI_PER_SHARE, net.chain.token)
        expected, _ = asyncio.run(_answer(net, client, kill_after=None))
        got, jobs = asyncio.run(_answer(net, client, kill_after=5))

        assert got == expected
        assert len(jobs) == 2  # one job per route
        first, second = jobs
        assert first.hops[-1].address != second.hops[-1].address
        assert first.tokens > 0 and second.tokens > first.tokens
        # The old job's last hop died with its receipts; the new route's job is committed.
        deadline = time.monotonic() + 60
        while net.chain.market.get_job(second.signed.job_id).status == "None":
            assert time.monotonic() < deadline, "the new route's job was never submitted"
            time.sleep(0.5)
