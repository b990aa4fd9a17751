"""A staked node moves, against real anvil, five real paid node processes and the real model.

Three staked nodes on 0:10 may move; 10:20 and 20:30 have one each. After a paid answer,
the 20:30 node is killed: one 0:10 node moves there, updates its registry entry on-chain,
and the network gives paid answers again, the mover paid for the layers it now runs. The
job served before the move is not lost.
"""

from __future__ import annotations

import re
import time

import pytest

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.localnet import LocalNetwork

pytestmark = [pytest.mark.chain, pytest.mark.model, pytest.mark.nodes]

SPANS = ((0, 10), (0, 10), (0, 10), (10, 20), (20, 30))
INTERVAL_S = 1.5
MOVE_BOUND_S = 60.0
SETTLE_S = 90
PROMPT = "What is the capital of France?"
MOVED = re.compile(r"moved from layers 0:10 to 20:30")


@pytest.fixture(scope="module")
def net(model_home):
    args = ("--threads", "1", "--rebalance", "--rebalance-interval", str(INTERVAL_S))
    with LocalNetwork(SPANS, node_accounts=(1, 2, 3, 5, 7), node_args=args) as network:
        yield network


def test_a_staked_node_moves_to_a_dead_nodes_layers_and_is_paid_there(net: LocalNetwork):
    chain = net.chain
    client = dev_account(4)
    chain.market.deposit(client, 5 * WEI_PER_SHARE, chain.token)
    _, before = net.generate(PROMPT, client, max_tokens=8)
    earlier = before[-1].signed.job_id
    net.wait_for_job(earlier, "Submitted", "Finalized", timeout=SETTLE_S)

    dead = net.nodes[4]
    assert dead is not None
    dead.kill()
    killed_at = time.monotonic()
    movers: list[int] = []
    while not movers:
        assert time.monotonic() - killed_at < MOVE_BOUND_S, "no staked node moved to 20:30"
        time.sleep(0.5)
        movers = [i for i in range(3) if any(MOVED.search(line) for line in net.nodes[i].log)]
    healed_s = time.monotonic() - killed_at
    time.sleep(3 * INTERVAL_S)
    assert len([i for i in range(3) if any(MOVED.search(x) for x in net.nodes[i].log)]) == 1
    mover = net.accounts[movers[0]].address
    registered = chain.registry.get_node(mover)
    assert (registered.start, registered.end, registered.status) == (20, 30, "Active")

    wallet = chain.token.balance_of(mover)
    text, jobs = net.generate(PROMPT, client, max_tokens=8)
    assert "Paris" in text
    paid = jobs[-1]
    assert (paid.hops[-1].address, paid.hops[-1].start, paid.hops[-1].end) == (mover, 20, 30)
    record = net.wait_for_job(paid.signed.job_id, "Finalized", timeout=SETTLE_S)
    price = registered.price_per_token
    reward = chain.market.params()["rewardPerToken"] * record.tokens_served * 10 // 30
    assert chain.token.balance_of(mover) == wallet + record.tokens_served * 10 * price + reward
    # The answer served before the move still stands on-chain, not refused.
    assert chain.market.get_job(earlier).status in ("Submitted", "Finalized")
    print(f"a staked node moved {healed_s:.1f} s after the kill")
