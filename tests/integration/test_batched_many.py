"""256 paid answers from 16 clients settle in batches, every balance exact to the wei: real
anvil, three real paid nodes, the real model. The slow tier: about 256 short answers.

The last hop posts when it holds 256 answers or, sooner, when the oldest job's deadline
comes near; either way each job is paid once, in one batch."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from eth_account import Account
from net_helpers import assert_every_token_in_one_place

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.localnet import LocalNetwork
from sharedllm.node.ledger import FINALIZED, Ledger

pytestmark = [pytest.mark.chain, pytest.mark.model, pytest.mark.nodes, pytest.mark.slow]

PROMPT = "Name a colour."
CLIENTS = 16
ANSWERS = 256
SETTLE_S = 300


@pytest.fixture(scope="module")
def net(model_home):
    args = ("--threads", "1", "--batch-size", str(ANSWERS), "--batch-age", "3600")
    with LocalNetwork(node_args=args) as network:
        yield network


def test_256_answers_from_16_clients_settle_in_batches_exactly(net: LocalNetwork) -> None:
    chain = net.chain
    clients = [Account.from_key((0xC11E + k).to_bytes(32, "big")) for k in range(CLIENTS)]
    for c in clients:
        chain.w3.provider.make_request("anvil_setBalance", [c.address, hex(10**20)])
        chain.token.transfer(dev_account(0), c.address, 2 * WEI_PER_SHARE)
        chain.market.deposit(c, 1 * WEI_PER_SHARE, chain.token)
    nodes = [a.address for a in net.accounts]
    escrow = {c.address: chain.market.escrow_of(c.address) for c in clients}
    wallets = {n: chain.token.balance_of(n) for n in nodes}
    pool = chain.market.reward_pool()

    def ask(client, count: int = ANSWERS // CLIENTS) -> list:
        return [net.generate(PROMPT, client, max_tokens=1)[1][-1] for _ in range(count)]

    # One answer first, alone: transformers' lazy imports are not safe across threads.
    first = ask(clients[0], 1)
    with ThreadPoolExecutor(max_workers=2) as pool_:
        answered = list(pool_.map(ask, clients[1:]))
    answered.insert(0, first + ask(clients[0], ANSWERS // CLIENTS - 1))

    poster = Ledger(net.ledger_path(len(nodes) - 1))
    job_ids = [job.signed.job_id for jobs in answered for job in jobs]
    assert len(set(job_ids)) == ANSWERS
    deadline = time.monotonic() + SETTLE_S
    while True:
        rows = [poster.get(j) for j in job_ids]
        if all(r is not None and r.status == FINALIZED for r in rows):
            break
        assert time.monotonic() < deadline, {r.status for r in rows if r is not None}
        time.sleep(2)
    batch_ids = {r.batch_id for r in rows}
    assert None not in batch_ids
    assert sum(chain.batches.get_batch(b).entries for b in batch_ids) >= CLIENTS
    for job_id in job_ids:
        assert chain.market.get_job(job_id).status == "None", "no job settled on its own"

    price = chain.registry.get_node(nodes[0]).price_per_token
    reward_per_token = chain.market.params()["rewardPerToken"]
    owed = dict.fromkeys(nodes, 0)
    rewards = dict.fromkeys(nodes, 0)
    for client, jobs in zip(clients, answered, strict=True):
        spent = 0
        for job in jobs:
            for node, (start, end) in zip(nodes, net.spans, strict=True):
                share = job.tokens * (end - start) * price
                spent += share
                owed[node] += share
                rewards[node] += reward_per_token * job.tokens * (end - start) // 30
        assert chain.market.escrow_of(client.address) == escrow[client.address] - spent
    for node in nodes:
        assert chain.token.balance_of(node) == wallets[node] + owed[node] + rewards[node]
    assert chain.market.reward_pool() == pool - sum(rewards.values())
    assert_every_token_in_one_place(net, tuple(c.address for c in clients))
