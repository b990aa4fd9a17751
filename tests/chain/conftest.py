"""Fixtures for chain tests: three staked nodes splitting 30 layers, and a funded client.

The staked network is built once per module and each test runs inside an anvil snapshot
that is reverted afterwards, so tests stay independent without redeploying every time.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chain_helpers import CLIENT_DEPOSIT, MODEL_ID, PRICES, SPANS, Network

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.connection import Chain
from sharedllm.chain.devnet import Devnet
from sharedllm.chain.registry import NodeConfig


def stake_network(net: Devnet, chain: Chain) -> Network:
    """Dev accounts 1..3 staked as nodes over 0:10, 10:20, 20:30; account 4 has deposited."""
    nodes = [dev_account(i) for i in (1, 2, 3)]
    for index, (node, (start, end), price) in enumerate(zip(nodes, SPANS, PRICES, strict=True)):
        cfg = NodeConfig(
            endpoint=f"http://127.0.0.1:{9100 + index}",
            pubkey="0x" + f"{index + 1:02x}" * 32,
            model_id=MODEL_ID,
            start=start,
            end=end,
            price_per_token=price,
        )
        chain.registry.stake(node, 100 * WEI_PER_SHARE, cfg, chain.token)
    client = dev_account(4)
    chain.market.deposit(client, CLIENT_DEPOSIT, chain.token)
    return Network(net, chain, nodes, client)


@pytest.fixture(scope="module")
def staked_devnet() -> Iterator[Network]:
    with Devnet() as net:
        yield stake_network(net, net.chain())


@pytest.fixture
def network(staked_devnet: Network) -> Iterator[Network]:
    provider = staked_devnet.chain.w3.provider
    snapshot = provider.make_request("evm_snapshot", [])["result"]
    try:
        yield staked_devnet
    finally:
        provider.make_request("evm_revert", [snapshot])
