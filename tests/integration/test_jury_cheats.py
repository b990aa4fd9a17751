"""Every cheating mode of ``sharedllm.testing.cheats`` is still slashed, now through the jury.

One node per mode serves layers 10:20 (seven node processes besides the three honest ones),
one verifier checks every job and three jurors judge each dispute. Slow: about five minutes.
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.devnet import DEVNET_PARAMS
from sharedllm.client.planner import RoutePolicy
from sharedllm.localnet import LocalNetwork

pytestmark = [pytest.mark.chain, pytest.mark.model, pytest.mark.nodes, pytest.mark.slow]

# Every mode cheats on every step: a job of a rate mode may hold no cheated step at all.
MODES = ("skip_layer", "random", "bf16", "int8", "replay", "passthrough")
PROMPT = "Write one sentence about the sea."
SETTLE_S = 180.0


@pytest.fixture(scope="module")
def net(model_home):
    spans = [(0, 10), (10, 20), (20, 30)] + [(10, 20)] * len(MODES)
    with LocalNetwork(
        spans,
        node_accounts=(1, 2, 3, 5, 6, 7, 8, 13, 14),
        node_faults={3 + i: ("--cheat", mode) for i, mode in enumerate(MODES)},
        params=dataclasses.replace(DEVNET_PARAMS, challenge_window=15),
        verifier_probability=1.0,
        jurors=(10, 11, 12),
    ) as network:
        network.chain.market.deposit(dev_account(4), 10 * WEI_PER_SHARE, network.chain.token)
        yield network


@pytest.mark.parametrize("index", range(len(MODES)), ids=MODES)
def test_the_cheat_is_upheld_by_the_jury_and_slashed(net: LocalNetwork, index: int) -> None:
    chain = net.chain
    cheater = net.accounts[3 + index].address
    stake = chain.registry.get_node(cheater).stake
    policy = RoutePolicy(trusted={net.nodes[i].url for i in (0, 3 + index, 2)})
    _, jobs = net.generate(PROMPT, dev_account(4), 8, policy=policy)
    job_id = jobs[-1].signed.job_id

    assert net.verifier.verdict(job_id, SETTLE_S).startswith("challenged hop=1")
    deadline = time.monotonic() + SETTLE_S
    while (d := chain.court.get_dispute(job_id)).phase not in ("Upheld", "Rejected"):
        assert time.monotonic() < deadline, f"the dispute is still {d.phase}"
        time.sleep(0.5)
    assert (d.phase, d.uphold_votes, d.revealed) == ("Upheld", 3, 3)
    assert chain.registry.get_node(cheater).stake == stake - chain.market.params()["slashAmount"]
    assert chain.market.get_job(job_id).status == "Challenged"
