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
    contract the open demands' bonds. ``extra``: accounts beyond the dev accounts."""
    chain = net.chain
    accounts = [dev_account(i).address for i in range(DEV_ACCOUNT_COUNT)] + list(extra)
    contracts = [chain.registry.address, chain.market.address, chain.court.address,
                 chain.batches.address]  # fmt: skip
    wallets = sum(chain.token.balance_of(a) for a in accounts)
    assert wallets + sum(chain.token.balance_of(c) for c in contracts) == chain.token.total_supply()
    assert chain.token.balance_of(chain.registry.address) == sum(
        chain.registry.get_node(a).stake for a in accounts
    )
    assert chain.token.balance_of(chain.market.address) == (
        chain.market.total_escrow() + chain.market.total_locked() + chain.market.total_batched()
        + chain.market.reward_pool()
    )  # fmt: skip
    assert chain.token.balance_of(chain.court.address) == (
        chain.court.total_verifier_stake() + chain.court.total_held()
    )
    demand_bond = chain.batches.params()["demandBond"]
    open_demands = sum(
        chain.batches.get_batch(b).open_demands for b in range(1, chain.batches.batch_count() + 1)
    )
    assert chain.token.balance_of(chain.batches.address) == open_demands * demand_bond
