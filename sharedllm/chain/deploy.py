"""Deploy ShareToken, NodeRegistry, JobMarket, DisputeCourt and BatchSettlement to any RPC
and wire them together."""

from __future__ import annotations

from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3

from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.artifacts import load_artifact
from sharedllm.chain.connection import contract
from sharedllm.chain.deployment import Deployment, MarketParams
from sharedllm.chain.transact import send
from sharedllm.errors import ChainError
from sharedllm.protocol.types import Address

DEFAULT_INITIAL_SUPPLY = 1_000_000 * WEI_PER_SHARE


def _deploy_one(w3: Web3, deployer: LocalAccount, name: str, *args: object) -> tuple[str, int]:
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = send(w3, deployer, factory.constructor(*args), f"deploy {name}")
    address = receipt["contractAddress"]
    if not address:
        raise ChainError(f"deploy {name}: the receipt has no contract address")
    return address, receipt["blockNumber"]


def _token_args(initial_supply: int) -> tuple[object, ...]:
    """The token's constructor may or may not take the initial supply; follow its ABI."""
    constructor = [e for e in load_artifact("ShareToken")["abi"] if e["type"] == "constructor"]
    inputs = constructor[0]["inputs"] if constructor else []
    return (initial_supply,) if len(inputs) == 1 else ()


def deploy(
    w3: Web3,
    deployer: LocalAccount,
    params: MarketParams | None = None,
    initial_supply: int = DEFAULT_INITIAL_SUPPLY,
    rpc_url: str | None = None,
    save_to: Path | None = None,
) -> Deployment:
    """Deploy all five, call ``setMarket``, ``setCourt`` and ``setBatches``, and write the
    deployment file if ``save_to``."""
    params = params or MarketParams()
    if params.withdrawal_delay <= params.max_job_ttl:
        raise ChainError("params: withdrawalDelay must exceed maxJobTtl", field="params")
    if params.min_bond * 10_000 <= params.slash_amount * params.bounty_bps:
        raise ChainError(
            "params: minBond must exceed the largest bounty (slashAmount * bountyBps / 10000), "
            "or griefing an honest node could pay",
            field="params",
        )
    # A node that asked to leave is still paid for the jobs it was sent before, submitted
    # (or batched) up to maxJobTtl later (the registry's terms lock): it must stay slashable
    # until their disputes and demands can end.
    if params.unbonding_delay <= params.max_job_ttl + params.longest_dispute:
        raise ChainError(
            "params: unbondingDelay must exceed maxJobTtl plus the challenge window plus two "
            "rounds of commit and reveal windows, or a node could leave before a dispute of a "
            "job it was sent ends",
            field="params",
        )
    if params.unbonding_delay <= (
        params.max_job_ttl + params.challenge_window + params.batch_response_window
    ):
        raise ChainError(
            "params: unbondingDelay must exceed maxJobTtl plus the challenge window plus the "
            "batch response window, or a poster could leave before a demand on its batch is "
            "answered",
            field="params",
        )
    token, first_block = _deploy_one(w3, deployer, "ShareToken", *_token_args(initial_supply))
    registry, _ = _deploy_one(
        w3,
        deployer,
        "NodeRegistry",
        token,
        params.min_stake,
        params.unbonding_delay,
        params.max_job_ttl,  # the terms lock: one change of model, span or price per job
    )
    market, _ = _deploy_one(w3, deployer, "JobMarket", token, registry, params.market_tuple())
    registry_contract = contract(w3, "NodeRegistry", registry)
    send(w3, deployer, registry_contract.functions.setMarket(market), "setMarket")
    court, _ = _deploy_one(w3, deployer, "DisputeCourt", token, market, params.court_tuple())
    market_contract = contract(w3, "JobMarket", market)
    send(w3, deployer, market_contract.functions.setCourt(court), "setCourt")
    batches, _ = _deploy_one(w3, deployer, "BatchSettlement", market, params.batch_tuple())
    send(w3, deployer, market_contract.functions.setBatches(batches), "setBatches")
    deployment = Deployment(
        chain_id=w3.eth.chain_id,
        token=Address(token),
        registry=Address(registry),
        market=Address(market),
        court=Address(court),
        batches=Address(batches),
        params=params,
        deploy_block=first_block,
        rpc_url=rpc_url,
    )
    if save_to is not None:
        deployment.save(save_to)
    return deployment
