"""Paid answers over links encrypted with TLS 1.3 and pinned to the keys nodes registered:
real anvil, four real paid node processes serving https, the real model."""

from __future__ import annotations

import asyncio
import http.client
import urllib.request
from urllib.parse import urlsplit

import pytest
from nacl.signing import SigningKey
from reference import NEW_TOKENS, PROMPTS

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.node_keys import public_key_bytes32
from sharedllm.chain.registry import NodeConfig
from sharedllm.client.generate import TextGenerator
from sharedllm.client.planner import PLAIN_HTTP, RoutePolicy
from sharedllm.errors import RouteError
from sharedllm.localnet import LocalNetwork
from sharedllm.node.local import local_nodes

pytestmark = [pytest.mark.chain, pytest.mark.model, pytest.mark.nodes]

SPARE = 3  # a second 0:10 node


@pytest.fixture(scope="module")
def net(model_home):
    spans = ((0, 10), (10, 20), (20, 30), (0, 10))
    # No verifier here: every paid network is TLS now, and tests/integration/test_verifier.py
    # has a verifier fetch transcripts over links pinned to the registered keys.
    with LocalNetwork(spans, node_accounts=(1, 2, 3, 5)) as network:
        client = dev_account(4)
        network.chain.market.deposit(client, 5 * WEI_PER_SHARE, network.chain.token)
        yield network


def _answer(net: LocalNetwork, client_model, prompt: str, policy: RoutePolicy | None = None):
    payer = net.payer(dev_account(4))

    async def run():
        async with TextGenerator(
            payer.directory, payer=payer, client_model=client_model, policy=policy
        ) as gen:
            ids = client_model.prompt_ids(prompt)
            tokens = [t async for t in gen.token_ids(ids, NEW_TOKENS)]
            return tokens, gen.session.route, gen.planner.unreachable, payer.jobs

    return asyncio.run(run())


def test_a_paid_answer_over_pinned_links_equals_generate(
    net: LocalNetwork, client_model, generate_baseline
) -> None:
    tokens, route, _, _ = _answer(net, client_model, PROMPTS[1])
    assert tokens == generate_baseline[PROMPTS[1]]
    registered = {n.endpoint: n.pubkey for n in net.chain.registry.active_nodes()}
    assert [h.url.split(":")[0] for h in route] == ["https"] * 3
    # Each hop, and the hop before it that pushed to it, pinned the registered key.
    assert [h.key for h in route] == [registered[h.url] for h in route]


def test_a_tls_node_answers_no_plaintext(net: LocalNetwork) -> None:
    """A paid node serving TLS takes no plaintext request at all: a frame or a job sent in
    clear would be readable and alterable on the path."""
    node = net.nodes[0]
    assert node is not None and node.url.startswith("https://")
    plain = "http://" + urlsplit(node.url).netloc
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        urllib.request.urlopen(f"{plain}/info", timeout=10).read()


def test_an_address_that_presents_another_key_than_registered_gets_no_prompt(
    net: LocalNetwork, client_model, generate_baseline
) -> None:
    """Proof of concept: an endpoint whose node holds another key than the one registered
    for it (a hijacked address, a node that changed hands) is never sent a prompt. The
    client first routes through the spare 0:10 node; once the registry names another key
    for that endpoint, the link is refused at the handshake and the answer goes around it."""
    spare = net.nodes[SPARE]
    assert spare is not None
    others = [n.url for i, n in enumerate(net.nodes) if n is not None and i not in (0, SPARE)]
    through_spare = RoutePolicy(trusted=[spare.url, *others])
    tokens, route, _, _ = _answer(net, client_model, PROMPTS[2], through_spare)
    assert route[0].url == spare.url and tokens == generate_baseline[PROMPTS[2]]

    record = net.chain.registry.get_node(net.accounts[SPARE].address)
    other_key = public_key_bytes32(SigningKey(bytes(range(32))))
    moved = NodeConfig(
        record.endpoint, other_key, record.model_id, record.start, record.end,
        record.price_per_token,
    )  # fmt: skip
    net.chain.registry.update_config(net.accounts[SPARE], moved)
    try:
        with pytest.raises(RouteError) as refused:
            _answer(net, client_model, PROMPTS[2], through_spare)
        assert spare.url in refused.value.message and "presented key" in refused.value.message

        tokens, route, unreachable, _ = _answer(net, client_model, PROMPTS[2])
        assert tokens == generate_baseline[PROMPTS[2]]
        assert route[0].url == net.nodes[0].url
        assert "presented key" in unreachable[spare.url]
    finally:
        net.chain.registry.update_config(
            net.accounts[SPARE],
            NodeConfig(
                record.endpoint, record.pubkey, record.model_id, record.start, record.end,
                record.price_per_token,
            ),
        )  # fmt: skip


def test_a_paid_route_never_uses_a_plain_http_endpoint(
    net: LocalNetwork, client_model, generate_baseline
) -> None:
    """Proof of concept: the registry takes any endpoint string, and a paying client once
    planned onto a registered http endpoint, sending its prompt's hidden states in the
    clear. Such a node is left out and said so; the answer goes around it."""
    spare = net.nodes[SPARE]
    assert spare is not None
    others = [n.url for i, n in enumerate(net.nodes) if n is not None and i not in (0, SPARE)]
    record = net.chain.registry.get_node(net.accounts[SPARE].address)
    with local_nodes(["0:10"], "--plaintext", "--threads", "1") as (plain,):
        assert plain.url.startswith("http://") and plain.key is None
        net.chain.registry.update_config(
            net.accounts[SPARE],
            NodeConfig(
                plain.url, record.pubkey, record.model_id, record.start, record.end,
                record.price_per_token,
            ),
        )  # fmt: skip
        try:
            with pytest.raises(RouteError) as refused:
                _answer(net, client_model, PROMPTS[3], RoutePolicy(trusted=[plain.url, *others]))
            assert f"{plain.url}: {PLAIN_HTTP}" in refused.value.message
            tokens, route, unreachable, _ = _answer(net, client_model, PROMPTS[3])
            assert tokens == generate_baseline[PROMPTS[3]]
            assert plain.url not in [h.url for h in route]
            assert unreachable[plain.url] == PLAIN_HTTP
        finally:
            net.chain.registry.update_config(
                net.accounts[SPARE],
                NodeConfig(
                    record.endpoint, record.pubkey, record.model_id, record.start, record.end,
                    record.price_per_token,
                ),
            )  # fmt: skip
