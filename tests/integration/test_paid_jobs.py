"""Paid jobs end to end: real anvil, three real paid node processes, the real model."""

from __future__ import annotations

import time

import pytest
from links import call_json, pinned_ssl

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.errors import ContractRevert
from sharedllm.localnet import LocalNetwork
from sharedllm.node.ledger import Ledger

pytestmark = [pytest.mark.chain, pytest.mark.model, pytest.mark.nodes]

PROMPT = "What is the capital of France?"
SETTLE_S = 90


@pytest.fixture(scope="module")
def net(model_home):
    with LocalNetwork() as network:
        yield network


def _submissions(net: LocalNetwork, job_id: str) -> int:
    market = net.chain.market.contract
    return len(
        market.events.ResultSubmitted().get_logs(
            from_block=0, argument_filters={"jobHash": bytes.fromhex(job_id[2:])}
        )
    )


def test_a_paid_answer_moves_balances_exactly(net: LocalNetwork) -> None:
    chain = net.chain
    client = dev_account(4)
    chain.market.deposit(client, 5 * WEI_PER_SHARE, chain.token)
    nodes = [a.address for a in net.accounts]
    before_escrow = chain.market.escrow_of(client.address)
    before_wallets = [chain.token.balance_of(n) for n in nodes]
    before_pool = chain.market.reward_pool()

    text, jobs = net.generate(PROMPT, client, max_tokens=24)
    assert "Paris" in text
    paid = jobs[-1]
    net.wait_for_job(paid.signed.job_id, "Finalized", timeout=SETTLE_S)

    record = chain.market.get_job(paid.signed.job_id)
    tokens = record.tokens_served
    assert tokens == paid.tokens  # the client's count and the node's agree
    price = chain.registry.get_node(nodes[0]).price_per_token
    shares = [tokens * (end - start) * price for start, end in net.spans]
    reward_per_token = chain.market.params()["rewardPerToken"]
    rewards = [reward_per_token * tokens * (end - start) // 30 for start, end in net.spans]

    assert chain.market.escrow_of(client.address) == before_escrow - sum(shares)
    for node, before, share, reward in zip(nodes, before_wallets, shares, rewards, strict=True):
        assert chain.token.balance_of(node) == before + share + reward
    assert chain.market.reward_pool() == before_pool - sum(rewards)
    assert _submissions(net, paid.signed.job_id) == 1


def test_paid_nodes_print_no_deprecation_warning_while_serving(net: LocalNetwork) -> None:
    """A library deprecation caused by our calls shows up here, in the nodes' own output,
    before the library removes the old API and breaks a newcomer's node."""
    net.generate(PROMPT, dev_account(4), max_tokens=4)
    for node in net.nodes:
        assert node is not None
        warnings = [line for line in node.log if "Warning" in line]
        assert warnings == [], f"node {node.span}: {warnings}"


def test_a_bad_job_is_refused_at_the_door_with_the_contract_code(net: LocalNetwork) -> None:
    chain = net.chain
    client = dev_account(5)
    chain.market.deposit(client, 1 * WEI_PER_SHARE, chain.token)
    _, jobs = net.generate(PROMPT, client, max_tokens=4)
    paid = jobs[-1]
    net.wait_for_job(paid.signed.job_id, "Submitted", timeout=SETTLE_S)
    escrow = chain.market.escrow_of(client.address)

    job, signature = paid.signed.wire()
    body = {
        "session_id": "replayed-session-1",
        "model_id": net.manifest.model_id,
        "route": [
            {"url": h.url, "start": h.start, "end": h.end, "key": h.pubkey} for h in paid.hops
        ],
        "hop_index": 0,
        "max_length": 16,
        "job": job,
        "signature": signature,
    }
    status, refused = call_json(
        f"{paid.hops[0].url}/sessions", pinned_ssl(*net.nodes), "POST", body
    )
    assert (status, refused["code"]) == (402, "JobAlreadySubmitted")
    with pytest.raises(ContractRevert) as reverted:
        chain.market.submit_result(
            net.accounts[-1], paid.signed.job, paid.signed.signature, 1, b"\x00" * 32
        )
    assert reverted.value.code == "JobAlreadySubmitted"
    assert chain.market.escrow_of(client.address) == escrow


def test_a_client_withdrawing_mid_job_cannot_leave_the_nodes_unpaid(net: LocalNetwork) -> None:
    chain = net.chain
    client = dev_account(6)
    chain.market.deposit(client, 1 * WEI_PER_SHARE, chain.token)
    # The client asks for all of its escrow back before the job is even submitted.
    chain.market.request_withdrawal(client, chain.market.escrow_of(client.address))
    _, jobs = net.generate(PROMPT, client, max_tokens=8)
    with pytest.raises(ContractRevert) as early:
        chain.market.withdraw(client)
    assert early.value.code == "WithdrawalNotReady"
    record = net.wait_for_job(jobs[-1].signed.job_id, "Finalized", timeout=SETTLE_S)
    assert record.cost == jobs[-1].cost > 0
    # What the withdrawal can still take is what is left after paying the route.
    assert chain.market.escrow_of(client.address) == 1 * WEI_PER_SHARE - jobs[-1].cost


def test_last_hop_killed_before_submitting_submits_once_after_restart(net: LocalNetwork) -> None:
    chain = net.chain
    client = dev_account(7)
    chain.market.deposit(client, 1 * WEI_PER_SHARE, chain.token)
    last = len(net.spans) - 1
    net.nodes[last].stop()
    net.restart(last, extra=("--submit-delay", "600"))
    _, jobs = net.generate(PROMPT, client, max_tokens=4)
    job_id = jobs[-1].signed.job_id
    deadline = time.monotonic() + 30
    while Ledger(net.ledger_path(last)).get(job_id) is None:
        assert time.monotonic() < deadline, "the last hop never recorded the job"
        time.sleep(0.2)
    net.nodes[last].kill()
    assert chain.market.get_job(job_id).status == "None"

    net.restart(last)
    net.wait_for_job(job_id, "Submitted", timeout=SETTLE_S)
    net.wait_for_job(job_id, "Finalized", timeout=SETTLE_S)
    assert _submissions(net, job_id) == 1


@pytest.mark.slow  # about 25 s; the default run stays under its 20 minutes
def test_last_hop_killed_right_after_submitting_does_not_submit_again(net: LocalNetwork) -> None:
    chain = net.chain
    client = dev_account(8)
    chain.market.deposit(client, 1 * WEI_PER_SHARE, chain.token)
    last = len(net.spans) - 1
    net.nodes[last].stop()
    node = net.restart(last, faults=("--crash-after-submit",))
    _, jobs = net.generate(PROMPT, client, max_tokens=4)
    job_id = jobs[-1].signed.job_id
    node.process.wait(SETTLE_S)  # it exits right after its submission is mined
    assert Ledger(net.ledger_path(last)).get(job_id).status == "served"

    net.restart(last)
    net.wait_for_job(job_id, "Finalized", timeout=SETTLE_S)
    assert _submissions(net, job_id) == 1
    assert Ledger(net.ledger_path(last)).get(job_id).status == "finalized"
