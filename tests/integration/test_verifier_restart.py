"""A verifier killed mid-check and restarted neither disputes twice nor skips the job.

Three real node processes, the middle one skipping a layer on every step; the verifier
process is made to die (exit 9) at a chosen point by ``sharedllm.testing.faulty_verifier``.
Two more accounts are staked as verifiers, so that a jury can sit and the verifier opens its
dispute; nobody runs them, so the disputes stay open, which is all these tests look at.
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.devnet import DEVNET_PARAMS
from sharedllm.localnet import LocalNetwork
from sharedllm.verifier.ledger import CHALLENGED, VerifierLedger

pytestmark = [pytest.mark.chain, pytest.mark.model, pytest.mark.nodes]

PROMPT = "What is the capital of France?"
TOKENS = 4
# Long enough for a restarted verifier (imports, model load) to still be inside the window.
PARAMS = dataclasses.replace(DEVNET_PARAMS, challenge_window=30, unbonding_delay=800)


@pytest.fixture(scope="module")
def net(model_home):
    with LocalNetwork(node_faults={1: ("--cheat", "skip_layer")}, params=PARAMS) as n:
        chain = n.chain
        chain.market.deposit(dev_account(4), 5 * WEI_PER_SHARE, chain.token)
        for index in (10, 11):
            stake = chain.court.params()["minVerifierStake"]
            chain.court.stake_verifier(dev_account(index), stake, chain.token)
        yield n


def _disputes(net: LocalNetwork, job_id: str) -> list[dict]:
    logs = net.chain.court.contract.events.DisputeOpened().get_logs(
        from_block=0, argument_filters={"jobHash": bytes.fromhex(job_id[2:])}
    )
    return [dict(e["args"]) for e in logs]


def _crash_then_restart(net: LocalNetwork, point: str) -> tuple[str, str]:
    """Serve a cheated job with a verifier that dies at ``point``; restart it; the verdict."""
    crashing = net.start_verifier(1.0, crash_at=point)
    _, jobs = net.generate(PROMPT, dev_account(4), TOKENS)
    job_id = jobs[-1].signed.job_id
    assert crashing.wait_exit(60) == 9, crashing.lines[-10:]
    ledger = VerifierLedger(net.verifier_ledger_path())
    assert ledger.get(job_id).status == "checking"  # what a crash leaves behind
    ledger.close()
    restarted = net.start_verifier(1.0)
    return job_id, restarted.verdict(job_id)


def test_a_job_settled_while_the_verifier_was_down_is_missed_without_a_transaction(
    net: LocalNetwork,
) -> None:
    if net.verifier is not None:
        net.verifier.stop()
    _, jobs = net.generate(PROMPT, dev_account(4), TOKENS)
    job_id = jobs[-1].signed.job_id
    net.wait_for_job(job_id, "Submitted")
    net.devnet.advance_time(PARAMS.challenge_window + 1)
    net.wait_for_job(job_id, "Finalized")  # the cheated job was paid: nobody checked in time
    verdict = net.start_verifier(1.0).verdict(job_id)
    assert verdict == "missed reason='the job was finalized before it was checked'", verdict
    assert _disputes(net, job_id) == []
    row = VerifierLedger(net.verifier_ledger_path()).get(job_id)
    assert row.status == "missed" and "finalized" in row.reason


@pytest.mark.slow  # about 25 s; the default run stays under its 20 minutes
def test_a_crash_after_the_dispute_is_sent_does_not_send_another(net: LocalNetwork) -> None:
    job_id, verdict = _crash_then_restart(net, "after_challenge")
    assert verdict.startswith("challenged hop=1") and "(found)" in verdict, verdict
    assert net.chain.market.get_job(job_id).status == "Disputed"
    time.sleep(2)  # a second transaction, if any, would be mined by now
    assert len(_disputes(net, job_id)) == 1
    row = VerifierLedger(net.verifier_ledger_path()).get(job_id)
    assert row.status == CHALLENGED and row.hop == 1 and row.challenge_tx


@pytest.mark.slow  # about 25 s; the default run stays under its 20 minutes
def test_a_crash_in_the_middle_of_a_check_redoes_it(net: LocalNetwork) -> None:
    job_id, verdict = _crash_then_restart(net, "mid_check")
    assert verdict.startswith("challenged hop=1 reason=output"), verdict
    assert net.chain.market.get_job(job_id).status == "Disputed"
    assert len(_disputes(net, job_id)) == 1
    ledger = VerifierLedger(net.verifier_ledger_path())
    assert ledger.get(job_id).status == CHALLENGED
    assert [c["job_id"] for c in ledger.challenges()].count(job_id) == 1
