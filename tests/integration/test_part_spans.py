"""Routes over parts of spans, against real node processes and the real model.

Nodes on 0:12, 10:20 and 18:30 cover every layer, though no span ends where the next
begins: the route runs each on a part of its span (0:12, 12:20, 20:30, or another cut at
the span edges, as the nodes' measured speeds make cheapest), answers with
``generate``'s tokens, free and paid, and each paid hop is owed the layers it ran. A
verifier recomputes a part-span hop on a part of a span it loaded once.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from links import call_json, node_http, pinned_ssl
from net_helpers import network_tokens
from reference import PROMPTS

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.client.generate import TextGenerator
from sharedllm.localnet import LocalNetwork
from sharedllm.node.local import local_nodes
from sharedllm.protocol.session_keys import key_digest
from sharedllm.verifier.inspection import Runners
from sharedllm.verifier.recompute import check_hop
from sharedllm.verifier.transcript_fetch import fetch_transcript

pytestmark = [pytest.mark.chain, pytest.mark.model, pytest.mark.nodes]

SPANS = ((0, 12), (10, 20), (18, 30))
PROMPT = "What is the capital of France?"
SETTLE_S = 90
VERIFIER = dev_account(6)


@pytest.fixture(scope="module")
def free_nodes(model_home):
    with local_nodes([f"{a}:{b}" for a, b in SPANS]) as started:
        yield started


@pytest.fixture(scope="module")
def net(model_home):
    with LocalNetwork(SPANS) as network:
        chain = network.chain
        chain.court.stake_verifier(VERIFIER, chain.court.params()["minVerifierStake"], chain.token)
        yield network


def _free_text(urls: list[str], client_model, prompt: str, max_tokens: int) -> str:
    async def run() -> str:
        async with TextGenerator(urls, client_model=client_model) as gen:
            return "".join([p async for p in gen.generate(prompt, max_tokens=max_tokens)])

    return asyncio.run(run())


def test_overlapping_spans_answer_as_generate(free_nodes, client_model, generate_baseline):
    urls = [n.url for n in free_nodes]
    for prompt in PROMPTS[:2]:
        assert network_tokens(client_model, urls, prompt) == generate_baseline[prompt]


def test_a_paid_answer_over_parts_of_spans_pays_each_hop_its_layers(
    net: LocalNetwork, free_nodes, client_model, store
) -> None:
    chain = net.chain
    client = dev_account(4)
    chain.market.deposit(client, 5 * WEI_PER_SHARE, chain.token)
    nodes = [a.address for a in net.accounts]
    before_wallets = [chain.token.balance_of(n) for n in nodes]
    before_escrow = chain.market.escrow_of(client.address)

    text, jobs = net.generate(PROMPT, client, max_tokens=16)
    assert text == _free_text([n.url for n in free_nodes], client_model, PROMPT, 16)
    (paid,) = jobs
    route = [(h.start, h.end) for h in paid.hops]
    assert [h.address for h in paid.hops] == nodes
    assert route[0][0] == 0 and route[-1][1] == 30
    assert all(a[1] == b[0] for a, b in zip(route, route[1:], strict=False))
    assert all(s <= a < b <= e for (a, b), (s, e) in zip(route, SPANS, strict=True))
    assert route != list(SPANS)  # overlapping spans: some hop runs only a part
    transcripts = asyncio.run(_fetch_all(net, paid))  # before the job is final and pruned

    record = net.wait_for_job(paid.signed.job_id, "Finalized", timeout=SETTLE_S)
    assert record.tokens_served == paid.tokens
    layers = [end - start for start, end in route]
    price = chain.registry.get_node(nodes[0]).price_per_token
    shares = [paid.tokens * n * price for n in layers]
    reward_per_token = chain.market.params()["rewardPerToken"]
    rewards = [reward_per_token * paid.tokens * n // 30 for n in layers]
    assert chain.market.escrow_of(client.address) == before_escrow - sum(shares)
    for node, before, share, reward in zip(nodes, before_wallets, shares, rewards, strict=True):
        assert chain.token.balance_of(node) == before + share + reward

    # A verifier holding whole spans recomputes each hop on the part it ran.
    runners = Runners(store)
    whole = runners.get(net.manifest.model_id, 0, 30)
    for (start, end), transcript in zip(route, transcripts, strict=True):
        runner = runners.get(net.manifest.model_id, start, end)
        assert runner.layers[0] is whole.layers[start]  # a part, not a second copy
        assert check_hop(runner, transcript).verdict.ok


def test_a_node_refuses_layers_outside_its_span(net: LocalNetwork) -> None:
    """The route may ask a node for part of its span, never for a layer it does not hold."""
    first, node = net.nodes[0], net.nodes[1]
    assert first is not None and node is not None
    route = [{"url": first.url, "start": 0, "end": 8}, {"url": node.url, "start": 8, "end": 20}]
    body = {
        "session_id": "outside-" + str(time.time_ns()),
        "model_id": net.manifest.model_id,
        "route": route,
        "hop_index": 1,
        "max_length": 16,
        "control": key_digest("part-span-test-key"),
    }
    link = pinned_ssl(*net.nodes)
    status, answer = call_json(f"{node.url}/sessions", link, "POST", body)
    assert (status, answer["code"]) == (400, "SPAN_NOT_SERVED"), answer
    assert "10:20" in answer["message"] and "8:20" in answer["message"]


async def _fetch_all(net: LocalNetwork, job) -> list:
    chain = net.chain
    deadline = time.monotonic() + SETTLE_S
    async with node_http(*net.nodes) as http:
        fetched = []
        for i, hop in enumerate(job.hops):
            while True:
                try:
                    fetched.append(
                        await fetch_transcript(
                            http,
                            hop.url,
                            hop.address,
                            job.signed.job_id,
                            i,
                            VERIFIER,
                            chain.chain_id,
                            chain.market.address,
                        )  # fmt: skip
                    )
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
        return fetched
