"""Verification and disputes against a real network: real anvil, five real node processes,
four real verifier processes, the real model.

Layers 10:20 are served twice: by a node that skips a layer on every step (the cheater) and
by an honest one; layers 20:30 too, by an honest node and by one that submits every job for
its ``maxTokens`` (the over-charger). The client's trust list picks the route, so the test
knows which jobs ran through whom. One verifier checks every job (probability 1); three more
check nothing themselves and sit on the juries they are drawn for. With the challenger
excluded, every dispute of the checking verifier seats all three jurors.

Each attack keeps its proof of concept here next to the fix: the outsider's move is made for
real, and the test asserts that it no longer pays.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time

import pytest
from net_helpers import assert_every_token_in_one_place

from sharedllm.chain.accounts import DEV_ACCOUNT_COUNT, dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.court import FAULT, vote_commitment
from sharedllm.chain.devnet import DEVNET_PARAMS
from sharedllm.client.generate import TextGenerator
from sharedllm.client.planner import RoutePolicy
from sharedllm.errors import ContractRevert
from sharedllm.localnet import LocalNetwork
from sharedllm.verifier.ledger import PASSED, REJECTED, UPHELD, VerifierLedger

pytestmark = [pytest.mark.chain, pytest.mark.model, pytest.mark.nodes]

PROMPT = "What is the capital of France?"
TOKENS = 6
SPANS = [(0, 10), (10, 20), (20, 30), (10, 20), (20, 30)]
FIRST, CHEATER, LAST, HONEST, OVERCHARGER = range(5)
JURORS = (10, 11, 12)
# Verifier accounts with no process behind them. Each test that stakes one makes it leave at
# its end, or it would sit on later juries and never vote.
GRIEFER, GRIEFER_2, COLLUDER = 14, 15, 16
# Windows long enough for a killed node to be restarted inside its response window.
PARAMS = dataclasses.replace(
    DEVNET_PARAMS, challenge_window=15, response_window=20, commit_window=30
)
SETTLE_S = 120


@pytest.fixture(scope="module")
def net(model_home):
    with LocalNetwork(
        SPANS,
        node_accounts=(1, 2, 3, 5, 13),
        node_faults={CHEATER: ("--cheat", "skip_layer"), OVERCHARGER: ("--overcharge",)},
        params=PARAMS,
        verifier_probability=1.0,
        jurors=JURORS,
        node_stake=400 * WEI_PER_SHARE,  # the cheater is slashed in several tests
    ) as network:
        yield network


def _via(net: LocalNetwork, *nodes: int) -> RoutePolicy:
    return RoutePolicy(trusted={net.nodes[i].url for i in nodes})


def _events(net: LocalNetwork, contract: str, name: str, from_block: int) -> list[dict]:
    event = getattr(getattr(net.chain, contract).contract.events, name)()
    return [dict(e["args"]) for e in event.get_logs(from_block=from_block)]


def _accounts() -> list[str]:
    return [dev_account(i).address for i in range(DEV_ACCOUNT_COUNT)]


def _holdings(net: LocalNetwork) -> dict[str, int]:
    """Every place a token can be, per account and per pot."""
    chain = net.chain
    out: dict[str, int] = {}
    for a in _accounts():
        out[a] = chain.token.balance_of(a)
        out[f"stake:{a}"] = chain.registry.get_node(a).stake
        out[f"escrow:{a}"] = chain.market.escrow_of(a)
        out[f"verifier:{a}"] = chain.court.verifier_stake(a)
    out["locked"] = chain.market.total_locked()
    out["pool"] = chain.market.reward_pool()
    out["held"] = chain.court.total_held()
    return out


def _wait_dispute_end(net: LocalNetwork, job_id: str, timeout: float = SETTLE_S):
    deadline = time.monotonic() + timeout
    while (d := net.chain.court.get_dispute(job_id)).phase not in ("Upheld", "Rejected"):
        if time.monotonic() > deadline:
            raise AssertionError(f"dispute on {job_id} is still {d.phase}: {d}")
        time.sleep(0.5)
    return d


def _stake_verifier(net: LocalNetwork, index: int) -> None:
    chain = net.chain
    account = dev_account(index)
    if not chain.court.is_verifier(account.address):
        chain.court.stake_verifier(account, chain.court.params()["minVerifierStake"], chain.token)


def _leave(net: LocalNetwork, *indexes: int) -> None:
    for index in indexes:
        account = dev_account(index)
        if net.chain.court.is_verifier(account.address):
            net.chain.court.request_verifier_unstake(account)


def test_the_cheater_is_slashed_through_the_jury_and_honest_work_is_paid(
    net: LocalNetwork,
) -> None:
    chain, verifier = net.chain, net.verifier
    client = dev_account(4)
    chain.market.deposit(client, 5 * WEI_PER_SHARE, chain.token)
    nodes = [a.address for a in net.accounts]
    jurors = {dev_account(i).address for i in JURORS}
    start_block = chain.w3.eth.block_number
    before = _holdings(net)

    _, cheated = net.generate(PROMPT, client, TOKENS, policy=_via(net, FIRST, CHEATER, LAST))
    text, honest = net.generate(PROMPT, client, TOKENS, policy=_via(net, FIRST, HONEST, LAST))
    assert "Paris" in text
    bad, good = cheated[-1].signed.job_id, honest[-1].signed.job_id

    assert verifier.verdict(bad).startswith("challenged hop=1 reason=output")
    assert verifier.verdict(good) == "passed"
    assert verifier.said("dispute", bad, SETTLE_S).startswith("upheld hop=1 votes=3/3")
    net.wait_for_job(bad, "Challenged", timeout=SETTLE_S)
    net.wait_for_job(good, "Finalized", timeout=SETTLE_S)
    for juror in net.jurors:
        assert juror.said("juror", bad).startswith("round=0 vote=uphold reason=output")

    # The chain's account of what happened.
    challenged = _events(net, "market", "JobChallenged", start_block)
    compensated = _events(net, "market", "HopCompensated", start_block)
    paid = _events(net, "market", "HopPaid", start_block)
    opened = _events(net, "court", "DisputeOpened", start_block)
    resolved = _events(net, "court", "DisputeResolved", start_block)
    juror_pay = _events(net, "court", "JurorPaid", start_block)
    submitted = {
        "0x" + e["jobHash"].hex(): e for e in _events(net, "market", "ResultSubmitted", start_block)
    }
    assert [(e["node"], e["hop"]) for e in challenged] == [(nodes[CHEATER], 1)]
    assert [(e["challenger"], e["hop"], e["kind"]) for e in opened] == [
        (verifier.address, 1, FAULT)
    ]
    assert [(e["upheld"], e["upholdVotes"], e["rejectVotes"]) for e in resolved] == [(True, 3, 0)]
    assert {e["juror"] for e in juror_pay} == jurors
    slashed, bounty = challenged[0]["slashed"], challenged[0]["bounty"]
    market, court = chain.market.params(), chain.court.params()
    assert slashed == market["slashAmount"]
    # The hops that worked honestly on the cheated job are paid for it out of the slash.
    cheated_job = chain.market.get_job(bad)
    assert {(e["node"], e["amount"]) for e in compensated} == {
        (nodes[FIRST], cheated_job.amounts[0]),
        (nodes[LAST], cheated_job.amounts[2]),
    }
    left = slashed - sum(e["amount"] for e in compensated)
    assert bounty == left * market["bountyBps"] // 10_000
    to_jurors = bounty * court["jurorShareBps"] // 10_000
    assert {e["amount"] for e in juror_pay} == {to_jurors // 3}
    assert resolved[0]["challengerPaid"] == opened[0]["bond"] + bounty - to_jurors
    assert {e["node"] for e in paid} == {nodes[FIRST], nodes[HONEST], nodes[LAST]}

    # Every account moved by exactly what the events say, to the wei.
    after = _holdings(net)
    want = dict(before)
    want[verifier.address] += bounty - to_jurors
    for e in juror_pay:
        want[e["juror"]] += e["amount"]
    want[f"stake:{nodes[CHEATER]}"] -= slashed
    want[f"escrow:{client.address}"] -= submitted[good]["cost"]  # the cheated job is refunded
    for e in paid:
        want[e["node"]] += e["amount"] + e["reward"]
    for e in compensated:
        want[e["node"]] += e["amount"]
    dust = to_jurors - 3 * (to_jurors // 3)
    want["pool"] += left - bounty + dust - sum(e["reward"] for e in paid)
    assert after == want
    assert_every_token_in_one_place(net)

    # The verifier's ledger agrees.
    ledger = VerifierLedger(net.verifier_ledger_path())
    assert ledger.get(bad).status == UPHELD and ledger.get(bad).hop == 1
    assert ledger.get(good).status == PASSED
    record = ledger.evidence(ledger.get(bad).evidence)
    assert record["hop"] == 1 and record["reason"] == "output"
    assert "0x" + opened[0]["evidence"].hex() == ledger.get(bad).evidence


@pytest.mark.slow  # about 25 s; the default run stays under its 20 minutes
def test_a_lone_griefer_loses_its_bond_and_the_honest_node_keeps_its_stake(
    net: LocalNetwork,
) -> None:
    """Proof of concept of the lone verifier that slashed an honest node and profited: it
    stakes the minimum and disputes an honestly served job. The jury recomputes, rejects,
    and the bond pays the node and the jurors."""
    chain = net.chain
    _stake_verifier(net, GRIEFER)
    griefer = dev_account(GRIEFER)
    client = dev_account(6)
    chain.market.deposit(client, 2 * WEI_PER_SHARE, chain.token)
    accused = net.accounts[HONEST].address
    stake = chain.registry.get_node(accused).stake
    wallet = chain.token.balance_of(accused)
    griefer_wallet = chain.token.balance_of(griefer.address)
    start_block = chain.w3.eth.block_number

    _, jobs = net.generate(PROMPT, client, TOKENS, policy=_via(net, FIRST, HONEST, LAST))
    job_id = jobs[-1].signed.job_id
    net.wait_for_job(job_id, "Submitted", timeout=SETTLE_S)
    bond = chain.court.params()["minBond"]
    try:
        chain.court.open_dispute(griefer, job_id, 1, FAULT, b"\x00" * 32, bond, chain.token)
        dispute = _wait_dispute_end(net, job_id)
    finally:
        _leave(net, GRIEFER)
    assert dispute.phase == "Rejected" and dispute.uphold_votes == 0 and dispute.revealed == 3
    net.wait_for_job(job_id, "Finalized", timeout=SETTLE_S)
    assert chain.registry.get_node(accused).stake == stake
    to_jurors = bond * chain.court.params()["jurorShareBps"] // 10_000
    paid = sum(
        e["amount"] + e["reward"]
        for e in _events(net, "market", "HopPaid", start_block)
        if e["node"] == accused
    )
    assert chain.token.balance_of(accused) == wallet + bond - to_jurors + paid
    assert chain.token.balance_of(griefer.address) == griefer_wallet - bond
    assert not _events(net, "market", "JobChallenged", start_block)
    assert_every_token_in_one_place(net)


def test_colluders_below_half_the_verifier_stake_cannot_slash_an_honest_node(
    net: LocalNetwork,
) -> None:
    """A griefer with an accomplice staked as a verifier (together a third of the verifier
    stake): when the accomplice is drawn it votes to uphold, but it is outvoted, and pays for
    voting against the majority."""
    chain = net.chain
    for index in (GRIEFER_2, COLLUDER):
        _stake_verifier(net, index)
    griefer, colluder = dev_account(GRIEFER_2), dev_account(COLLUDER)
    stakes = {a: chain.court.verifier_stake(a) for a in chain.court.verifiers()}
    ours = stakes[griefer.address] + stakes[colluder.address]
    assert 2 * ours < sum(stakes.values())
    client = dev_account(7)
    chain.market.deposit(client, 2 * WEI_PER_SHARE, chain.token)
    accused = net.accounts[HONEST].address
    stake = chain.registry.get_node(accused).stake
    colluder_stake = chain.court.verifier_stake(colluder.address)

    _, jobs = net.generate(PROMPT, client, TOKENS, policy=_via(net, FIRST, HONEST, LAST))
    job_id = jobs[-1].signed.job_id
    net.wait_for_job(job_id, "Submitted", timeout=SETTLE_S)
    bond = chain.court.params()["minBond"]
    try:
        chain.court.open_dispute(griefer, job_id, 1, FAULT, b"\x00" * 32, bond, chain.token)
        seated = _accomplice_votes(net, job_id, colluder)
        dispute = _wait_dispute_end(net, job_id)
    finally:
        _leave(net, GRIEFER_2, COLLUDER)
    assert dispute.phase == "Rejected"
    assert chain.registry.get_node(accused).stake == stake
    penalty = chain.court.params()["jurorPenalty"]
    want = colluder_stake - penalty if seated else colluder_stake
    assert chain.court.verifier_stake(colluder.address) == want
    if seated:  # it voted to uphold, against the majority
        assert chain.court.get_ballot(job_id, colluder.address).uphold is True
    assert_every_token_in_one_place(net)


def _accomplice_votes(net: LocalNetwork, job_id: str, colluder) -> bool:
    """Vote to uphold as ``colluder`` if it is drawn; whether it was."""
    chain = net.chain
    deadline = time.monotonic() + 60
    while (d := chain.court.get_dispute(job_id)).phase == "Drawing":
        assert time.monotonic() < deadline, "the jury was never drawn"
        time.sleep(0.3)
    if colluder.address not in d.jurors:
        return False
    salt = secrets.token_bytes(32)
    chain.court.commit_vote(
        colluder, job_id, vote_commitment(job_id, d.round, colluder.address, True, salt)
    )
    while True:
        d = chain.court.get_dispute(job_id)
        if d.committed == len(d.jurors) or chain.now() >= d.commit_ends_at:
            break
        assert time.monotonic() < deadline + 60, "reveals never opened"
        time.sleep(0.3)
    chain.court.reveal_vote(colluder, job_id, True, salt)
    return True


def test_an_overcharge_is_proven_on_chain_and_refunded(net: LocalNetwork) -> None:
    """Proof of concept of the last hop that submitted the job's maxTokens instead of the
    positions served: the verifier proves it to the market from the commitment's preimage;
    no jury is needed, because the chain can check it itself."""
    chain, verifier = net.chain, net.verifier
    client = dev_account(8)
    chain.market.deposit(client, 2 * WEI_PER_SHARE, chain.token)
    escrow = chain.market.escrow_of(client.address)
    submitter = net.accounts[OVERCHARGER].address
    stake = chain.registry.get_node(submitter).stake
    start_block = chain.w3.eth.block_number

    _, jobs = net.generate(PROMPT, client, TOKENS, policy=_via(net, FIRST, HONEST, OVERCHARGER))
    job_id = jobs[-1].signed.job_id
    verdict = verifier.verdict(job_id)
    assert verdict.startswith("overcharge hop=2 proven"), verdict
    record = net.wait_for_job(job_id, "Challenged", timeout=SETTLE_S)
    (proof,) = _events(net, "market", "OverchargeProven", start_block)
    assert proof["charged"] == record.tokens_served == jobs[-1].signed.job.max_tokens
    assert proof["proven"] < proof["charged"]
    assert proof["prover"] == verifier.address
    assert chain.market.escrow_of(client.address) == escrow
    assert chain.registry.get_node(submitter).stake == stake - chain.market.params()["slashAmount"]
    compensated = {e["node"] for e in _events(net, "market", "HopCompensated", start_block)}
    assert compensated == {net.accounts[FIRST].address, net.accounts[HONEST].address}
    assert VerifierLedger(net.verifier_ledger_path()).get(job_id).status == UPHELD
    assert_every_token_in_one_place(net)


@pytest.mark.slow  # about 25 s; the default run stays under its 20 minutes
def test_an_accused_hop_restarting_inside_its_response_window_is_cleared(
    net: LocalNetwork,
) -> None:
    """The crash once punished as cheating: a hop that is down when the verifier asks gets
    a dispute for withholding, but it comes back inside the response window, the jurors
    fetch its transcript and find it honest. It keeps its stake; the route is paid."""
    chain, verifier = net.chain, net.verifier
    client = dev_account(6)
    chain.market.deposit(client, 2 * WEI_PER_SHARE, chain.token)
    accused = net.accounts[HONEST].address
    stake = chain.registry.get_node(accused).stake
    challenger_wallet = chain.token.balance_of(verifier.address)

    _, jobs = net.generate(PROMPT, client, TOKENS, policy=_via(net, FIRST, HONEST, LAST))
    net.nodes[HONEST].kill()  # served, then gone for a while
    job_id = jobs[-1].signed.job_id
    verdict = verifier.verdict(job_id, SETTLE_S)
    assert verdict.startswith("challenged hop=1 reason=transcript_refused"), verdict
    net.restart(HONEST)

    assert verifier.said("dispute", job_id, SETTLE_S).startswith("rejected hop=1")
    net.wait_for_job(job_id, "Finalized", timeout=SETTLE_S)
    assert chain.registry.get_node(accused).stake == stake
    bond = chain.court.params()["minBond"]
    to_jurors = bond * chain.court.params()["jurorShareBps"] // 10_000
    # A withholding claim in good faith: the bond comes back, less what the jurors earned.
    assert chain.token.balance_of(verifier.address) == challenger_wallet - to_jurors
    assert VerifierLedger(net.verifier_ledger_path()).get(job_id).status == REJECTED
    assert_every_token_in_one_place(net)


@pytest.mark.slow  # about 25 s; the default run stays under its 20 minutes
def test_a_last_hop_killed_mid_answer_and_back_inside_its_window_keeps_its_stake(
    net: LocalNetwork,
) -> None:
    """The crash once punished as cheating, mid-answer: the route's last hop is killed
    after a few tokens, the client (one that cannot sign an amendment mid-answer, as a
    browser wallet) fails over and hands the old job's receipts to the hop before it, which
    submits them. The dead hop's steps were journalled as they were served;
    restarted inside its response window, it shows them, and the jury clears it. Every hop
    of the old job, the dead one and the survivor that submitted included, is paid."""
    chain, verifier = net.chain, net.verifier
    client = dev_account(19)
    chain.market.deposit(client, 2 * WEI_PER_SHARE, chain.token)
    dead = net.accounts[LAST].address
    stake = chain.registry.get_node(dead).stake
    policy = _via(net, FIRST, HONEST, LAST)

    async def answer() -> list:
        payer = net.payer(client)
        payer.can_amend = False
        async with TextGenerator(
            payer.directory, payer=payer, store=net.store, policy=policy
        ) as gen:
            count = 0
            async for _ in gen.token_ids(gen.model.prompt_ids(PROMPT), 12):
                count += 1
                if count == 4:
                    policy.trusted.add(net.nodes[OVERCHARGER].url)  # somewhere to fail over to
                    net.nodes[LAST].kill()
        return payer.jobs

    first, *_ = asyncio.run(answer())
    job_id = first.signed.job_id
    record = net.wait_for_job(job_id, "Submitted", "Disputed", timeout=SETTLE_S)
    assert record.submitter == net.accounts[HONEST].address  # handed over
    verdict = verifier.verdict(job_id, SETTLE_S)
    assert verdict.startswith("challenged hop=2 reason=transcript_refused"), verdict
    net.restart(LAST)

    assert verifier.said("dispute", job_id, SETTLE_S).startswith("rejected hop=2")
    net.wait_for_job(job_id, "Finalized", timeout=SETTLE_S)
    assert chain.registry.get_node(dead).stake == stake
    paid = _events(net, "market", "HopPaid", 0)
    mine = [e for e in paid if "0x" + e["jobHash"].hex() == job_id]
    assert [e["node"] for e in mine] == [h.address for h in first.hops]
    assert all(e["amount"] > 0 for e in mine)
    assert_every_token_in_one_place(net)


@pytest.mark.slow  # about 65 s; the default run stays under its 20 minutes
def test_a_silent_juror_is_penalised_and_a_restarted_one_reveals_once(net: LocalNetwork) -> None:
    """Two jurors die after committing and before revealing: one stays down, one is
    restarted. The restarted one reveals the vote it kept (no second commitment), the
    dispute is decided by the two revealed votes after the reveal window, and the silent
    juror loses its penalty to the others."""
    chain, verifier = net.chain, net.verifier
    silent, restarted = JURORS[2], JURORS[0]
    crashing = [
        net.start_verifier(0.0, account=a, crash_at="before_reveal", wait=False)
        for a in (silent, restarted)
    ]
    for verifier_process in crashing:
        verifier_process.wait_ready()
    stakes = {a: chain.court.verifier_stake(dev_account(a).address) for a in JURORS}
    client = dev_account(17)
    chain.market.deposit(client, 2 * WEI_PER_SHARE, chain.token)
    try:
        _, jobs = net.generate(PROMPT, client, TOKENS, policy=_via(net, FIRST, CHEATER, LAST))
        job_id = jobs[-1].signed.job_id
        assert verifier.verdict(job_id).startswith("challenged hop=1 reason=output")
        for account in (silent, restarted):
            assert net.verifiers[account].wait_exit(SETTLE_S) == 9
        back = net.start_verifier(0.0, account=restarted)
        assert back.said("juror", job_id, SETTLE_S).startswith("round=0 vote=uphold")
        dispute = _wait_dispute_end(net, job_id)
        left = {a: chain.court.verifier_stake(dev_account(a).address) for a in JURORS}
    finally:
        net.start_verifier(0.0, account=silent)  # below the minimum now: it stakes again
    assert dispute.phase == "Upheld" and dispute.revealed == 2 and dispute.uphold_votes == 2
    penalty = chain.court.params()["jurorPenalty"]
    assert left[silent] == stakes[silent] - penalty
    assert left[restarted] == stakes[restarted] and left[JURORS[1]] == stakes[JURORS[1]]
    ballot = chain.court.get_ballot(job_id, dev_account(restarted).address)
    case = VerifierLedger(net.verifier_ledger_path(restarted)).case(job_id, 0)
    assert ballot.revealed and ballot.uphold is True and case.uphold is True
    assert ballot.commitment == vote_commitment(
        job_id, 0, dev_account(restarted).address, True, bytes.fromhex(case.salt[2:])
    )
    paid = {e["juror"] for e in _events(net, "court", "JurorPaid", 0)
            if "0x" + e["jobHash"].hex() == job_id}  # fmt: skip
    assert paid == {dev_account(a).address for a in (restarted, JURORS[1])}
    with pytest.raises(ContractRevert) as err:  # the dispute is over: nothing left to do
        chain.court.resolve(dev_account(restarted), job_id)
    assert err.value.code == "WrongPhase"
    assert_every_token_in_one_place(net)


@pytest.mark.slow  # about 30 s; the default run stays under its 20 minutes
def test_a_job_the_draw_skips_is_not_logged_at_info(net: LocalNetwork) -> None:
    """An operator acts on selected jobs; 52 'skipped' lines in a short session were noise."""
    verifier = net.start_verifier(1e-12)  # the draw skips every job
    try:
        client = dev_account(19)
        net.chain.market.deposit(client, 2 * WEI_PER_SHARE, net.chain.token)
        _, jobs = net.generate(PROMPT, client, 4, policy=_via(net, FIRST, HONEST, LAST))
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
    finally:
        net.start_verifier(1.0)


def test_a_replacement_that_cheats_is_slashed_and_the_old_holder_is_paid_its_part(
    net: LocalNetwork,
) -> None:
    """An amended job: the honest 10:20 node dies mid-answer and the client hands its span,
    from the position reached, to the only other 10:20 node, the cheater. The verifier
    finds the fault at a step the replacement served (the old holder's transcript is gone
    with it) and names the replacement's record hop; the jury upholds; only the cheater is
    slashed. The old holder, back inside its window, keeps its stake and is paid for the
    positions it served out of the slash, as are the survivors."""
    chain, verifier = net.chain, net.verifier
    client = dev_account(17)
    chain.market.deposit(client, 2 * WEI_PER_SHARE, chain.token)
    nodes = [a.address for a in net.accounts]
    stake = chain.registry.get_node(nodes[HONEST]).stake
    policy = _via(net, FIRST, HONEST, LAST)
    start_block = chain.w3.eth.block_number

    async def answer() -> list:
        payer = net.payer(client)
        async with TextGenerator(
            payer.directory, payer=payer, store=net.store, policy=policy
        ) as gen:
            count = 0
            async for _ in gen.token_ids(gen.model.prompt_ids(PROMPT), 12):
                count += 1
                if count == 3:
                    policy.trusted.add(net.nodes[CHEATER].url)  # the only one left for 10:20
                    net.nodes[HONEST].kill()
        return payer.jobs

    (paid,) = asyncio.run(answer())
    job_id = paid.signed.job_id
    (amendment,) = paid.amendments
    assert (amendment.hop, amendment.replacement) == (1, nodes[CHEATER])
    verdict = verifier.verdict(job_id, SETTLE_S)
    assert verdict.startswith("challenged hop=3 reason=output"), verdict
    net.restart(HONEST)
    assert verifier.said("dispute", job_id, SETTLE_S).startswith("upheld hop=3")
    net.wait_for_job(job_id, "Challenged", timeout=SETTLE_S)

    record = chain.market.get_job(job_id)
    assert record.hops == (nodes[FIRST], nodes[HONEST], nodes[LAST], nodes[CHEATER])
    challenged = _events(net, "market", "JobChallenged", start_block)
    assert [(e["node"], e["hop"]) for e in challenged] == [(nodes[CHEATER], 3)]
    compensated = {
        (e["node"], e["amount"]) for e in _events(net, "market", "HopCompensated", start_block)
    }
    assert compensated == {
        (nodes[FIRST], record.amounts[0]),
        (nodes[HONEST], record.amounts[1]),
        (nodes[LAST], record.amounts[2]),
    }
    assert (
        record.amounts[1]
        == amendment.from_position * 10 * chain.registry.get_node(nodes[HONEST]).price_per_token
    ), "the old holder is owed the positions before the amendment"
    assert chain.registry.get_node(nodes[HONEST]).stake == stake
    assert_every_token_in_one_place(net)
