"""The chain's RPC going away and coming back, as the nodes see it.

The nodes reach the devnet through an ``RpcGate`` that the test shuts and opens; the client
and the test itself talk to the devnet directly.
"""

from __future__ import annotations

import time

import pytest
from rpc_gate import RpcGate

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.errors import SharedLLMError
from sharedllm.localnet import LocalNetwork

pytestmark = [pytest.mark.chain, pytest.mark.model, pytest.mark.nodes]

PROMPT = "What is the capital of France?"
TOKENS = 4
CLIENT = 4
SUBMIT_DELAY_S = 3.0  # nodes hold a served job this long: the outage starts in between


@pytest.fixture(scope="module")
def gated(model_home):
    gate = RpcGate()
    args = ("--rpc-url", gate.url, "--submit-delay", str(SUBMIT_DELAY_S), "--threads", "1")
    net = LocalNetwork(node_args=args)
    gate.upstream = lambda: net.devnet.rpc_url
    with net:
        net.chain.market.deposit(dev_account(CLIENT), 5 * WEI_PER_SHARE, net.chain.token)
        yield net, gate
    gate.shut()


def test_a_served_job_waits_out_an_outage_and_is_paid_after(gated) -> None:
    net, gate = gated
    _, jobs = net.generate(PROMPT, dev_account(CLIENT), TOKENS)
    job_id = jobs[-1].signed.job_id
    gate.shut()  # before the last hop's submission, which waits SUBMIT_DELAY_S
    try:
        time.sleep(SUBMIT_DELAY_S + 4)  # the settler tries, fails and keeps the job
        assert net.chain.market.get_job(job_id).status == "None"
    finally:
        gate.open()
    net.wait_for_job(job_id, "Submitted", timeout=30)
    net.devnet.advance_time(int(net.chain.market.params()["challengeWindow"]) + 1)
    record = net.wait_for_job(job_id, "Finalized", timeout=30)
    assert record.tokens_served > 0
    for node in net.nodes:
        assert node is not None and node.process.poll() is None, "a node died in the outage"


def test_while_the_rpc_is_down_nodes_refuse_new_jobs_and_nothing_is_spent(gated) -> None:
    net, gate = gated
    market = net.chain.market
    escrow = market.escrow_of(dev_account(CLIENT).address)
    gate.shut()
    try:
        with pytest.raises(SharedLLMError) as refused:
            net.generate(PROMPT, dev_account(CLIENT), TOKENS)
        print(refused.value)
        assert "[CHAIN]" in str(refused.value), refused.value  # says why, not just "no route"
    finally:
        gate.open()
    assert market.escrow_of(dev_account(CLIENT).address) == escrow
    text, jobs = net.generate(PROMPT, dev_account(CLIENT), TOKENS)  # served again once it is back
    assert text and jobs
