"""The verifier against a real network: real anvil, four real node processes, the real model.

Layers 10:20 are served twice: by a node that skips a layer on every step (the cheater) and
by an honest one. The client's trust list picks the route, so the test knows which jobs ran
through the cheater. A verifier process checks every job (probability 1).
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from sharedllm.chain.accounts import DEV_ACCOUNT_COUNT, dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.devnet import DEVNET_PARAMS
from sharedllm.client.planner import RoutePolicy
from sharedllm.localnet import LocalNetwork
from sharedllm.verifier.ledger import CHALLENGED, PASSED, VerifierLedger

pytestmark = [pytest.mark.chain, pytest.mark.model, pytest.mark.nodes]

PROMPT = "What is the capital of France?"
TOKENS = 6
SPANS = [(0, 10), (10, 20), (20, 30), (10, 20)]
FIRST, CHEATER, LAST, HONEST = range(4)
PARAMS = dataclasses.replace(DEVNET_PARAMS, challenge_window=15)
SETTLE_S = 90


@pytest.fixture(scope="module")
def net(model_home):
    with LocalNetwork(
        SPANS,
        node_accounts=(1, 2, 3, 5),
        node_faults={CHEATER: ("--cheat", "skip_layer")},
        params=PARAMS,
        verifier_probability=1.0,
    ) as network:
        yield network


def _via(net: LocalNetwork, *nodes: int) -> RoutePolicy:
    return RoutePolicy(trusted={net.nodes[i].url for i in nodes})


def _events(net: LocalNetwork, name: str, from_block: int) -> list[dict]:
    event = getattr(net.chain.market.contract.events, name)()
    return [dict(e["args"]) for e in event.get_logs(from_block=from_block)]


def _holdings(net: LocalNetwork, addresses: list[str]) -> dict[str, int]:
    """Every place a token can be, per account and per pot."""
    chain = net.chain
    out = {a: chain.token.balance_of(a) for a in addresses}
    for a in addresses:
        out[f"stake:{a}"] = chain.registry.get_node(a).stake
        out[f"escrow:{a}"] = chain.market.escrow_of(a)
        out[f"verifier:{a}"] = chain.market.verifier_stake(a)
    out["locked"] = chain.market.total_locked()
    out["pool"] = chain.market.reward_pool()
    return out


def test_the_cheater_is_slashed_and_honest_work_is_paid(net: LocalNetwork) -> None:
    chain, verifier = net.chain, net.verifier
    client = dev_account(4)
    chain.market.deposit(client, 5 * WEI_PER_SHARE, chain.token)
    accounts = [dev_account(i).address for i in range(DEV_ACCOUNT_COUNT)]
    nodes = [a.address for a in net.accounts]
    start_block = chain.w3.eth.block_number
    before = _holdings(net, accounts)

    _, cheated = net.generate(PROMPT, client, TOKENS, policy=_via(net, FIRST, CHEATER, LAST))
    text, honest = net.generate(PROMPT, client, TOKENS, policy=_via(net, FIRST, HONEST, LAST))
    assert "Paris" in text
    bad, good = cheated[-1].signed.job_id, honest[-1].signed.job_id

    assert verifier.verdict(bad).startswith("challenged hop=1 reason=output")
    assert verifier.verdict(good) == "passed"
    net.wait_for_job(bad, "Challenged", timeout=SETTLE_S)
    net.wait_for_job(good, "Finalized", timeout=SETTLE_S)

    # The chain's account of what happened.
    challenged = _events(net, "JobChallenged", start_block)
    votes = _events(net, "ChallengeVoted", start_block)
    paid = _events(net, "HopPaid", start_block)
    submitted = {"0x" + e["jobHash"].hex(): e for e in _events(net, "ResultSubmitted", start_block)}
    assert [(e["node"], e["hop"]) for e in challenged] == [(nodes[CHEATER], 1)]
    assert [(e["verifier"], e["hop"]) for e in votes] == [(verifier.address, 1)]
    slashed, bounty = challenged[0]["slashed"], challenged[0]["bounty"]
    params = chain.market.params()
    assert slashed == params["slashAmount"]
    assert bounty == slashed * params["bountyBps"] // 10_000
    assert {e["node"] for e in paid} == {nodes[FIRST], nodes[HONEST], nodes[LAST]}

    # Every account moved by exactly what the events say, to the wei.
    after = _holdings(net, accounts)
    want = dict(before)
    want[verifier.address] += bounty
    want[f"stake:{nodes[CHEATER]}"] -= slashed
    want[f"escrow:{client.address}"] -= submitted[good]["cost"]  # the cheated job is refunded
    for e in paid:
        want[e["node"]] += e["amount"] + e["reward"]
    want["pool"] += slashed - bounty - sum(e["reward"] for e in paid)
    assert after == want
    assert after[f"verifier:{verifier.address}"] == params["minVerifierStake"]

    # Every token is in exactly one place: a wallet, a stake, an escrow, locked, the pool.
    in_contracts = chain.token.balance_of(chain.registry.address) + chain.token.balance_of(
        chain.market.address
    )
    wallets = sum(chain.token.balance_of(a) for a in accounts)
    assert wallets + in_contracts == chain.token.total_supply()
    assert chain.token.balance_of(chain.registry.address) == sum(
        chain.registry.get_node(a).stake for a in accounts
    )
    assert chain.token.balance_of(chain.market.address) == (
        chain.market.total_escrow() + chain.market.total_locked()
        + sum(chain.market.verifier_stake(a) for a in accounts) + chain.market.reward_pool()
    )  # fmt: skip

    # The verifier's ledger agrees.
    ledger = VerifierLedger(net.verifier_ledger_path())
    assert ledger.get(bad).status == CHALLENGED and ledger.get(bad).hop == 1
    assert ledger.get(good).status == PASSED
    record = ledger.evidence(ledger.get(bad).evidence)
    assert record["hop"] == 1 and record["reason"] == "output"
    assert "0x" + votes[0]["evidence"].hex() == ledger.get(bad).evidence


def test_a_hop_that_cannot_show_its_transcript_is_slashed(net: LocalNetwork) -> None:
    chain, verifier = net.chain, net.verifier
    client = dev_account(6)
    chain.market.deposit(client, 5 * WEI_PER_SHARE, chain.token)
    stake = chain.registry.get_node(net.accounts[HONEST].address).stake
    escrow = chain.market.escrow_of(client.address)

    _, jobs = net.generate(PROMPT, client, TOKENS, policy=_via(net, FIRST, HONEST, LAST))
    net.nodes[HONEST].kill()  # served, then gone: its transcript cannot be fetched
    job_id = jobs[-1].signed.job_id

    verdict = verifier.verdict(job_id)
    assert verdict.startswith("challenged hop=1 reason=transcript_refused"), verdict
    net.wait_for_job(job_id, "Challenged", timeout=SETTLE_S)
    slash = chain.market.params()["slashAmount"]
    assert chain.registry.get_node(net.accounts[HONEST].address).stake == stake - slash
    assert chain.market.escrow_of(client.address) == escrow  # refunded in full


def test_a_job_the_draw_skips_is_not_logged_at_info(net: LocalNetwork) -> None:
    """An operator acts on selected jobs; 52 'skipped' lines in a short session were noise."""
    verifier = net.start_verifier(1e-12)  # the draw skips every job
    client = dev_account(7)
    net.chain.market.deposit(client, 2 * WEI_PER_SHARE, net.chain.token)
    _, jobs = net.generate(PROMPT, client, 4, policy=_via(net, FIRST, CHEATER, LAST))
    job_id = jobs[-1].signed.job_id
    net.wait_for_job(job_id, "Submitted", "Finalized", timeout=SETTLE_S)
    deadline = time.monotonic() + 60
    while True:  # the verifier records every job it draws for, selected or not
        ledger = VerifierLedger(net.verifier_ledger_path())
        seen = ledger.get(job_id)
        ledger.close()
        if seen is not None or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert seen is not None and not seen.selected
    assert not [line for line in verifier.lines if "skipped" in line and job_id in line]
