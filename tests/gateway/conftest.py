"""A real ``sharedllm serve`` process in front of the session's shared paid network (devnet
+ three staked node processes), once per test module; everything is stopped even on failure."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.gateway.api_keys import ApiKeys
from sharedllm.gateway.local import LocalGateway, start_gateway
from sharedllm.localnet import LocalNetwork

OPERATOR = 9  # dev account whose escrow pays for API requests
OPERATOR_ESCROW = 5 * WEI_PER_SHARE


@dataclass
class Served:
    net: LocalNetwork
    gateway: LocalGateway
    keys: ApiKeys
    secrets: dict[str, str]  # key name -> the API key text

    @property
    def operator(self) -> str:
        return dev_account(OPERATOR).address


@pytest.fixture(scope="module")
def served(
    paid_network: LocalNetwork, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    net = paid_network
    home = tmp_path_factory.mktemp("gateway-home")
    net.chain.market.deposit(dev_account(OPERATOR), OPERATOR_ESCROW, net.chain.token)
    keys = ApiKeys(home / "keys.db")
    secrets = {
        "main": keys.add("main", 1 * WEI_PER_SHARE)[1],
        "poor": keys.add("poor", 1000)[1],  # wei: less than one token on any route
    }
    gateway = start_gateway(
        net.devnet.rpc_url,
        net.devnet.deployment_path,
        operator_dev_account=OPERATOR,
        keys_file=home / "keys.db",
        home=home,
    )
    try:
        yield Served(net, gateway, keys, secrets)
    finally:
        gateway.stop()
        keys.close()
    assert gateway.process.returncode == 0, "\n".join(gateway.log[-20:])  # clean SIGTERM
