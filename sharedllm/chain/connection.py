"""Connect to an RPC and a deployment, checking that they belong together.

The three failure modes a user actually meets get their own message: the RPC is not
there, it is a different chain than the deployment file says, or the addresses hold no
code (typically a devnet that was restarted without redeploying).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from web3 import Web3
from web3.exceptions import Web3Exception

from sharedllm.chain.artifacts import abi
from sharedllm.chain.batches import Batches
from sharedllm.chain.court import Court
from sharedllm.chain.deployment import Deployment
from sharedllm.chain.market import Market
from sharedllm.chain.registry import Registry
from sharedllm.chain.token import Token
from sharedllm.chain.transact import describe_failure, rpc
from sharedllm.errors import ChainError

RPC_TIMEOUT_S = 10


def web3_for(rpc_url: str) -> Web3:
    """A Web3 on ``rpc_url`` that fails fast if the RPC is not answering."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": RPC_TIMEOUT_S}))
    try:
        w3.eth.chain_id  # noqa: B018 - the first request proves the endpoint answers
    except (OSError, ValueError, Web3Exception) as exc:
        message = f"cannot reach the RPC at {rpc_url} ({describe_failure(exc)})"
        raise ChainError(message, field="rpc_url") from None
    return w3


def contract(w3: Web3, name: str, address: str) -> Any:
    return w3.eth.contract(
        address=Web3.to_checksum_address(address), abi=abi(name), decode_tuples=True
    )


@dataclass
class Chain:
    """A checked connection: the web3 handle plus typed wrappers of the five contracts."""

    w3: Web3
    deployment: Deployment
    token: Token
    registry: Registry
    market: Market
    court: Court
    batches: Batches

    @property
    def chain_id(self) -> int:
        return self.deployment.chain_id

    def eth_balance(self, address: str) -> int:
        return rpc(lambda: self.w3.eth.get_balance(Web3.to_checksum_address(address)), "getBalance")

    def now(self) -> int:
        """The latest block's timestamp: the chain's clock."""
        return int(rpc(lambda: self.w3.eth.get_block("latest")["timestamp"], "getBlock"))


def connect(rpc_url: str, deployment: Deployment, check_code: bool = True) -> Chain:
    w3 = web3_for(rpc_url)
    chain_id = w3.eth.chain_id
    if chain_id != deployment.chain_id:
        raise ChainError(
            f"wrong chain: the RPC at {rpc_url} is chain {chain_id}, "
            f"the deployment file is for chain {deployment.chain_id}",
            field="chain_id",
        )
    if check_code:
        for name, address in (
            ("ShareToken", deployment.token),
            ("NodeRegistry", deployment.registry),
            ("JobMarket", deployment.market),
            ("DisputeCourt", deployment.court),
            ("BatchSettlement", deployment.batches),
        ):
            if len(w3.eth.get_code(Web3.to_checksum_address(address))) == 0:
                raise ChainError(
                    f"unknown deployment: no {name} code at {address} on chain {chain_id} "
                    "(was the devnet restarted? redeploy or pass the right --deployment)",
                    field="deployment",
                )
    return Chain(
        w3=w3,
        deployment=deployment,
        token=Token(w3, contract(w3, "ShareToken", deployment.token)),
        registry=Registry(w3, contract(w3, "NodeRegistry", deployment.registry)),
        market=Market(w3, contract(w3, "JobMarket", deployment.market)),
        court=Court(w3, contract(w3, "DisputeCourt", deployment.court)),
        batches=Batches(w3, contract(w3, "BatchSettlement", deployment.batches)),
    )
