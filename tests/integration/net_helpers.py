"""Shared by the integration tests: the prompts, and generation through running nodes."""

from __future__ import annotations

import asyncio

from reference import NEW_TOKENS

from sharedllm.chain.accounts import DEV_ACCOUNT_COUNT, dev_account
from sharedllm.client.generate import TextGenerator
from sharedllm.model.client_model import ClientModel
from sharedllm.model.sampling import SamplingParams


def network_tokens(
    client_model: ClientModel,
    urls: list[str],
    prompt: str,
    max_new_tokens: int = NEW_TOKENS,
    sampling: SamplingParams | None = None,
) -> list[int]:
    """Token ids generated through the nodes at ``urls``."""

    async def run() -> list[int]:
        async with TextGenerator(urls, client_model=client_model) as gen:
            ids = client_model.prompt_ids(prompt)
            return [t async for t in gen.token_ids(ids, max_new_tokens, sampling)]

    return asyncio.run(run())


def assert_every_token_in_one_place(net, extra: tuple[str, ...] = ()) -> None:
    """Wallets and the contracts hold the whole supply, and each contract holds exactly what
    its books say: the registry the node stakes; the market escrows, locked jobs, batched
    payments and the pool; the court verifier stakes and what disputes hold; the batch
    contract the open demands' bonds. ``extra``: accounts beyond the dev accounts.

    Every figure is read at one block: the nodes' settlers may finalize a job between two
    reads, and a sum over two blocks would count its payment twice or not at all."""
    chain = net.chain
    block = chain.w3.eth.block_number

    def at(fn):
        return fn.call(block_identifier=block)

    token, registry = chain.token.contract.functions, chain.registry.contract.functions
    market, court = chain.market.contract.functions, chain.court.contract.functions
    batches = chain.batches.contract.functions
    accounts = [dev_account(i).address for i in range(DEV_ACCOUNT_COUNT)] + list(extra)
    contracts = [chain.registry.address, chain.market.address, chain.court.address,
                 chain.batches.address]  # fmt: skip
    held = {a: at(token.balanceOf(a)) for a in [*accounts, *contracts]}
    assert sum(held.values()) == at(token.totalSupply())
    assert held[chain.registry.address] == sum(at(registry.getNode(a)).stake for a in accounts)
    assert held[chain.market.address] == (
        at(market.totalEscrow()) + at(market.totalLocked()) + at(market.totalBatched())
        + at(market.rewardPool())
    )  # fmt: skip
    assert held[chain.court.address] == at(court.totalVerifierStake()) + at(court.totalHeld())
    demand_bond = chain.batches.params()["demandBond"]
    count = at(batches.batchCount())
    open_demands = sum(at(batches.getBatch(b)).openDemands for b in range(1, count + 1))
    assert held[chain.batches.address] == open_demands * demand_bond
