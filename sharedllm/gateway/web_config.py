"""``GET /api/config``: everything the page needs to talk to the chain on its own.

The page reads balances and sends deposits straight through the visitor's wallet, so it
needs the chain, the addresses and the ABI fragments; it signs jobs for the gateway, so it
needs the EIP-712 domain. The fragments are cut from the ABIs shipped in the package, so the
page can never drift from the deployed contracts.
"""

from __future__ import annotations

from typing import Any

from sharedllm.chain.artifacts import abi
from sharedllm.gateway.state import GatewayState
from sharedllm.protocol.job import DOMAIN_NAME, DOMAIN_VERSION

PAGE_ABI = {
    "ShareToken": (
        "balanceOf",
        "allowance",
        "approve",
        "nonces",
        "eip712Domain",
        "symbol",
        "decimals",
    ),
    "JobMarket": (
        "deposit",
        "depositWithPermit",
        "requestWithdrawal",
        "withdraw",
        "escrowOf",
        "pendingWithdrawal",
        "getJob",
        "params",
        "Deposited",
        "Withdrawn",
        "WithdrawalRequested",
    ),
    "NodeRegistry": ("getNode", "activeCount", "minStake"),
}


def fragments(contract: str, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """The ABI entries with these names, plus every custom error so reverts decode."""
    wanted = set(names)
    return [
        entry
        for entry in abi(contract)
        if entry.get("name") in wanted or entry.get("type") == "error"
    ]


def page_config(state: GatewayState) -> dict[str, Any]:
    """Blocking (one contract read): call it off the event loop."""
    chain = state.chain
    manifest = state.client_model.manifest
    deployment = chain.deployment
    params = chain.market.params()  # as deployed, not as the deployment file remembers
    return {
        "chainId": chain.chain_id,
        "chainIdHex": hex(chain.chain_id),
        "rpcUrl": state.rpc_url,
        "addresses": {
            "ShareToken": deployment.token,
            "JobMarket": deployment.market,
            "NodeRegistry": deployment.registry,
        },
        "abi": {name: fragments(name, names) for name, names in PAGE_ABI.items()},
        "model": {
            "id": manifest.model_id,
            "name": manifest.name,
            "numLayers": manifest.num_layers,
        },
        "eip712Domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain.chain_id,
            "verifyingContract": deployment.market,
        },
        "params": {k: params[k] for k in ("challengeWindow", "withdrawalDelay", "maxJobTtl")},
        "decimals": 18,
        "symbol": "SHARE",
    }
