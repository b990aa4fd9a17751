"""The Python job signer against the real JobMarket: digests, signatures, settlement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chain_helpers import PRICES, SPANS, Network
from juries import draw, stake_verifiers, vote

from sharedllm.chain.court import FAULT
from sharedllm.errors import ContractRevert
from sharedllm.protocol.job import Job, job_digest, sign_job

pytestmark = pytest.mark.chain

REPO = Path(__file__).resolve().parents[2]
VECTOR_FILES = [
    REPO / "tests/vectors/job_digests.json",
    REPO / "contracts/test/vectors/job_digests.json",
]
COMMITMENT = b"\x42" * 32


def test_python_digest_equals_hash_job_on_chain(network: Network) -> None:
    chain = network.chain
    jobs = [
        network.job(),
        network.job(nonce=0, maxTokens=1, maxPricePerToken=0),
        network.job(nonce=2**256 - 1, deadline=2**64 - 1, maxTokens=2**32 - 1),
        network.job(route=[network.nodes[0].address], spanStarts=[0], spanEnds=[30]),
        network.job(route=[], spanStarts=[], spanEnds=[]),
    ]
    for job in jobs:
        assert job_digest(job, chain.chain_id, chain.market.address) == chain.market.hash_job(job)


def test_digest_matches_the_contract_test_vectors() -> None:
    files = [f for f in VECTOR_FILES if f.is_file()]
    if not files:
        pytest.skip("no job digest vectors written yet")
    vectors = json.loads(files[0].read_text())
    cases = vectors if isinstance(vectors, list) else vectors.get("vectors", vectors.get("cases"))
    assert cases, "vector file holds no cases"
    for case in cases:
        domain = case["domain"]
        job = Job.from_json(_ints(case["job"]))
        digest = job_digest(job, int(domain["chainId"]), domain["verifyingContract"])
        assert "0x" + digest.hex() == case["digest"].lower()


def _ints(body: dict) -> dict:
    """The vector file writes numbers as decimal strings (for JavaScript); the wire uses ints."""
    numeric = {"spanStarts", "spanEnds", "maxTokens", "maxPricePerToken", "nonce", "deadline"}
    plain = {k: v for k, v in body.items() if k not in numeric}
    for key in numeric:
        value = body[key]
        plain[key] = [int(x) for x in value] if isinstance(value, list) else int(value)
    return plain


def _submit(network: Network, job: Job, signature: bytes, tokens: int = 6):
    return network.chain.market.submit_result(network.nodes[-1], job, signature, tokens, COMMITMENT)


def test_python_signature_is_accepted_by_submit_result(network: Network) -> None:
    chain = network.chain
    job = network.job()
    signature = sign_job(job, network.client, chain.chain_id, chain.market.address)
    submitted = _submit(network, job, signature)
    assert submitted.job_id == "0x" + job_digest(job, chain.chain_id, chain.market.address).hex()
    assert chain.market.get_job(submitted.job_id).status == "Submitted"
    with pytest.raises(ContractRevert) as err:
        _submit(network, job, signature)
    assert err.value.code == "JobAlreadySubmitted"


TAMPERED = {
    "modelId": "0x" + "77" * 32,
    "nonce": 12345,
    "maxTokens": 31,
    "maxPricePerToken": PRICES[-1] + 1,
    "deadline": 2**40,
    "spanStarts": [0, 10, 21],
    "spanEnds": [10, 20, 31],
}


@pytest.mark.parametrize("field", [*TAMPERED, "route", "client"])
def test_any_tampered_field_breaks_the_signature(network: Network, field: str) -> None:
    """Valid-looking changes to each field in turn: the chain must refuse the old signature."""
    chain = network.chain
    job = network.job()
    signature = sign_job(job, network.client, chain.chain_id, chain.market.address)
    body = job.to_json()
    if field == "route":
        body["route"] = list(reversed(body["route"]))
    elif field == "client":
        body["client"] = network.nodes[0].address
    elif field in ("spanStarts", "spanEnds"):
        body["spanStarts"], body["spanEnds"] = [0, 10, 21], [10, 21, 30]
    else:
        body[field] = TAMPERED[field]
    with pytest.raises(ContractRevert) as err:
        _submit(network, Job.from_json(body), signature)
    assert err.value.code == "InvalidSignature"


def test_submit_then_finalize_moves_balances_to_the_wei(network: Network) -> None:
    chain = network.chain
    token, market = chain.token, chain.market
    tokens = 6
    job = network.job()
    signature = sign_job(job, network.client, chain.chain_id, market.address)
    layers = [end - start for start, end in SPANS]
    costs = [tokens * n * price for n, price in zip(layers, PRICES, strict=True)]
    reward_total = chain.deployment.params.reward_per_token * tokens
    rewards = [reward_total * n // sum(layers) for n in layers]
    escrow_before = market.escrow_of(network.client.address)
    wallets_before = [token.balance_of(n.address) for n in network.nodes]
    pool_before = market.reward_pool()

    submitted = _submit(network, job, signature, tokens)
    assert submitted.cost == sum(costs)
    assert market.escrow_of(network.client.address) == escrow_before - sum(costs)
    assert market.total_locked() == sum(costs)

    with pytest.raises(ContractRevert) as err:
        market.finalize(network.client, submitted.job_id)
    assert err.value.code == "ChallengeWindowOpen"
    network.devnet.advance_time(chain.deployment.params.challenge_window + 1)
    market.finalize(network.client, submitted.job_id)

    wallets_after = [token.balance_of(n.address) for n in network.nodes]
    paid = [after - before for after, before in zip(wallets_after, wallets_before, strict=True)]
    assert paid == [c + r for c, r in zip(costs, rewards, strict=True)]
    assert market.reward_pool() == pool_before - sum(rewards)
    assert market.total_locked() == 0
    assert market.get_job(submitted.job_id).status == "Finalized"
    with pytest.raises(ContractRevert) as err:
        market.finalize(network.client, submitted.job_id)
    assert err.value.code == "JobNotPending"


def test_checks_report_the_contract_error_with_its_arguments(network: Network) -> None:
    chain = network.chain
    job = network.job(maxPricePerToken=PRICES[0])
    signature = sign_job(job, network.client, chain.chain_id, chain.market.address)
    with pytest.raises(ContractRevert) as err:
        _submit(network, job, signature)
    assert err.value.code == "PriceAboveCap"
    assert err.value.details["node"] == network.nodes[1].address
    assert err.value.details["price"] == PRICES[1]
    assert "PriceAboveCap(node=" in err.value.message


def test_an_upheld_dispute_refunds_the_client_slashes_the_hop_and_pays_the_others(
    network: Network,
) -> None:
    chain = network.chain
    market, court, params = chain.market, chain.court, chain.deployment.params
    challenger, *jurors = stake_verifiers(chain, (8, 10, 11, 12))
    job = network.job()
    signature = sign_job(job, network.client, chain.chain_id, market.address)
    escrow_before = market.escrow_of(network.client.address)
    submitted = _submit(network, job, signature)
    amounts = market.get_job(submitted.job_id).amounts
    cheat = network.nodes[1]
    stake_before = chain.registry.get_node(cheat.address).stake
    honest_before = [chain.token.balance_of(n.address) for n in network.nodes]
    wallet_before = chain.token.balance_of(challenger.address)

    court.open_dispute(
        challenger, submitted.job_id, 1, FAULT, b"\x0e" * 32, params.min_bond, chain.token
    )
    assert market.get_job(submitted.job_id).status == "Disputed"
    with pytest.raises(ContractRevert) as err:
        market.finalize(network.client, submitted.job_id)
    assert err.value.code == "JobUnderDispute"
    seated = draw(chain, submitted.job_id, challenger)
    assert len(seated) == 3 and challenger.address not in seated
    vote(chain, submitted.job_id, jurors, uphold=True)
    court.resolve(challenger, submitted.job_id)

    dispute = court.get_dispute(submitted.job_id)
    assert (dispute.phase, dispute.uphold_votes, dispute.revealed) == ("Upheld", 3, 3)
    assert market.get_job(submitted.job_id).status == "Challenged"
    assert market.escrow_of(network.client.address) == escrow_before
    assert chain.registry.get_node(cheat.address).stake == stake_before - params.slash_amount
    assert not chain.registry.is_active(cheat.address)  # fell below the minimum stake
    # The other hops are paid for their work out of the slash.
    for i in (0, 2):
        assert chain.token.balance_of(network.nodes[i].address) == honest_before[i] + amounts[i]
    left = params.slash_amount - amounts[0] - amounts[2]
    bounty = left * params.bounty_bps // 10_000
    to_jurors = bounty * params.juror_share_bps // 10_000
    assert chain.token.balance_of(challenger.address) == wallet_before + bounty - to_jurors
    with pytest.raises(ContractRevert) as err:
        court.open_dispute(
            challenger, submitted.job_id, 1, FAULT, b"\x0e" * 32, params.min_bond, chain.token
        )
    assert err.value.code == "AlreadyDisputed"


def test_a_seated_juror_may_read_the_job_s_transcripts_even_once_it_is_leaving(
    network: Network,
) -> None:
    """A juror that stops being an active verifier (leaving, or penalised below the minimum
    in another case) must still be able to fetch what it has to judge, and only that."""
    chain = network.chain
    challenger, *jurors = stake_verifiers(chain, (8, 10, 11, 12))
    job = network.job()
    signature = sign_job(job, network.client, chain.chain_id, chain.market.address)
    submitted = _submit(network, job, signature)
    bond = chain.deployment.params.min_bond
    chain.court.open_dispute(
        challenger, submitted.job_id, 1, FAULT, b"\x0e" * 32, bond, chain.token
    )
    seated = draw(chain, submitted.job_id, challenger)
    juror = next(j for j in jurors if j.address in seated)
    chain.court.request_verifier_unstake(juror)
    assert not chain.court.is_verifier(juror.address)
    assert chain.court.may_judge(juror.address, submitted.job_id)
    assert not chain.court.may_judge(juror.address, "0x" + "77" * 32)
    assert not chain.court.may_judge(network.client.address, submitted.job_id)
