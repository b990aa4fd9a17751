"""A paid answer survives a hop dying mid-answer: the client settles the old job, signs one
for the new route, and the text is the same. When the dead hop was the route's last (the only
one holding every hop's receipts), the hop before it submits the old job, so every hop that
served it is paid its share."""

from __future__ import annotations

import asyncio

import pytest

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.client.generate import TextGenerator
from sharedllm.localnet import LocalNetwork

pytestmark = [pytest.mark.chain, pytest.mark.model, pytest.mark.nodes]

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
        net.wait_for_job(second.signed.job_id, "Submitted", timeout=60)

        # The old job's last hop died with the full receipts; the hop before it was handed
        # them and submitted the steps the client got answers for.
        old = net.wait_for_job(first.signed.job_id, "Submitted", timeout=60)
        assert old["submitter"].lower() == first.hops[-2].address.lower()
        assert old["tokensServed"] == first.tokens
        start_block = net.chain.deployment.deploy_block
        net.wait_for_job(first.signed.job_id, "Finalized", timeout=60)
        paid = [
            dict(e["args"])
            for e in net.chain.market.contract.events.HopPaid().get_logs(
                from_block=start_block,
                argument_filters={"jobHash": bytes.fromhex(first.signed.job_id[2:])},
            )
        ]
        assert [(p["node"].lower(), p["amount"]) for p in paid] == [
            (h.address.lower(), first.tokens * (h.end - h.start) * h.price_per_token)
            for h in first.hops
        ]
