"""A paid answer survives a hop dying mid-answer with the same text. The client amends its
job to hand the dead hop's span to another node, so that only that node recomputes and the
survivors are paid once; where no single node can take the span, it settles the old job and
pays for a new route (when the dead hop was the route's last, the only one holding every
hop's receipts, the hop before it submits the old job, so every hop that served it is paid)."""

from __future__ import annotations

import asyncio

import pytest

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.client.generate import TextGenerator
from sharedllm.localnet import LocalNetwork

pytestmark = [pytest.mark.chain, pytest.mark.model, pytest.mark.nodes]

PROMPT = "What is the capital of France?"
TOKENS = 24


async def _answer(net: LocalNetwork, client, kill_after: int | None) -> tuple[list[int], list]:
    payer = net.payer(client)
    async with TextGenerator(payer.directory, payer=payer, store=net.store) as gen:
        ids = gen.model.prompt_ids(PROMPT)
        tokens = []
        async for token in gen.token_ids(ids, TOKENS):
            tokens.append(token)
            if len(tokens) == kill_after:
                last = gen.session.route[-1].url
                victim = next(n for n in net.nodes if n is not None and n.url == last)
                victim.kill()
    return tokens, payer.jobs


@pytest.mark.slow  # about 20 s; the default run stays under its 20 minutes
def test_a_span_served_only_in_parts_fails_over_to_a_new_job(model_home) -> None:
    """No single node can take the dead last hop's span, so no amendment can name one: the
    client settles the old job (through a survivor, since the dead hop held the receipts)
    and pays for a new route."""
    spans = [(0, 10), (10, 20), (20, 30), (20, 25), (25, 30)]
    with LocalNetwork(spans, node_accounts=(1, 2, 3, 4, 5)) as net:
        client = dev_account(6)
        net.chain.market.deposit(client, 1 * WEI_PER_SHARE, net.chain.token)
        expected, _ = asyncio.run(_answer(net, client, kill_after=None))
        got, jobs = asyncio.run(_answer(net, client, kill_after=5))

        assert got == expected
        assert len(jobs) == 2  # one job per route
        first, second = jobs
        assert first.hops[-1].address != second.hops[-1].address
        assert first.tokens > 0 and second.tokens > first.tokens
        net.wait_for_job(second.signed.job_id, "Submitted", timeout=60)

        # The old job's last hop died with the full receipts; the hop before it was handed
        # them and submitted the steps the client got answers for.
        old = net.wait_for_job(first.signed.job_id, "Submitted", timeout=60)
        assert old.submitter.lower() == first.hops[-2].address.lower()
        assert old.tokens_served == first.tokens
        start_block = net.chain.deployment.deploy_block
        net.wait_for_job(first.signed.job_id, "Finalized", timeout=60)
        paid = [
            dict(e["args"])
            for e in net.chain.market.contract.events.HopPaid().get_logs(
                from_block=start_block,
                argument_filters={"jobHash": bytes.fromhex(first.signed.job_id[2:])},
            )
        ]
        assert [(p["node"].lower(), p["amount"]) for p in paid] == [
            (h.address.lower(), first.tokens * (h.end - h.start) * h.price_per_token)
            for h in first.hops
        ]


async def _answer_killing_hop(net: LocalNetwork, client, hop: int, kill_after: int):
    payer = net.payer(client)
    async with TextGenerator(payer.directory, payer=payer, store=net.store) as gen:
        ids = gen.model.prompt_ids(PROMPT)
        tokens, victim = [], None
        async for token in gen.token_ids(ids, TOKENS):
            tokens.append(token)
            if len(tokens) == kill_after:
                url = gen.session.route[hop].url
                victim = next(n for n in net.nodes if n is not None and n.url == url)
                victim.kill()
        route = list(gen.session.route)
    return tokens, payer.jobs, route


def _hop_paid(net: LocalNetwork, job_id: str) -> list[tuple[str, int]]:
    events = net.chain.market.contract.events.HopPaid().get_logs(
        from_block=net.chain.deployment.deploy_block,
        argument_filters={"jobHash": bytes.fromhex(job_id[2:])},
    )
    return [(e["args"]["node"].lower(), e["args"]["amount"]) for e in events]


def _check_amended(net: LocalNetwork, client, paid, hop: int, escrow_before: int) -> None:
    """One job, one amendment at ``hop``: every survivor paid once for every position, the
    dead hop for the ones before the amendment, the replacement for all of them (its replay
    included), and the client charged exactly that."""
    (amendment,) = paid.amendments
    assert amendment.hop == hop
    dead, spare = paid.hops[hop], paid.replacements[0]
    assert amendment.replacement.lower() == spare.address.lower()
    assert 0 < amendment.from_position < paid.tokens
    record = net.wait_for_job(paid.signed.job_id, "Submitted", timeout=60)
    assert record.tokens_served == paid.tokens
    assert net.chain.market.replacements_of(paid.signed.job_id) == 1
    if hop == len(paid.hops) - 1:
        assert record.submitter.lower() == spare.address.lower(), "the new last hop submits"
    unbroken = paid.tokens * paid.price_per_token
    replay = amendment.from_position * spare.layers * spare.price_per_token
    later = paid.tokens - amendment.from_position  # positions the replacement served live
    assert record.cost == paid.cost
    assert record.cost - unbroken == replay + later * spare.layers * (
        spare.price_per_token - dead.price_per_token
    ), "the failover costs the replay of one span (and the price difference after it)"
    net.wait_for_job(paid.signed.job_id, "Finalized", timeout=60)
    assert escrow_before - net.chain.market.escrow_of(client.address) == record.cost
    owed = [(h.address.lower(), paid.tokens * h.layers * h.price_per_token) for h in paid.hops]
    owed[hop] = (dead.address.lower(), amendment.from_position * dead.layers * dead.price_per_token)
    owed.append((spare.address.lower(), paid.tokens * spare.layers * spare.price_per_token))
    assert _hop_paid(net, paid.signed.job_id) == owed


def test_a_dead_hop_is_replaced_under_the_same_job(model_home) -> None:
    """The failover the issue asks for: the client amends its job rather than paying for a
    new one, the survivors keep their sessions, only the replacement replays, and the client
    pays the unbroken answer plus that replay, to the wei. A middle hop dies in one answer,
    the last hop (which held every receipt) in the next."""
    spans = [(0, 10), (10, 20), (20, 30), (10, 20), (20, 30)]
    with LocalNetwork(spans, node_accounts=(1, 2, 3, 4, 5)) as net:
        client = dev_account(6)
        net.chain.market.deposit(client, 1 * WEI_PER_SHARE, net.chain.token)
        expected, unbroken = asyncio.run(_answer(net, client, kill_after=None))
        net.wait_for_job(unbroken[0].signed.job_id, "Submitted", timeout=60)
        for hop, kill_after in ((1, 6), (2, 4)):
            assert len(expected) > kill_after + 1, "the answer goes on after the kill"
            escrow_before = net.chain.market.escrow_of(client.address)
            got, jobs, route = asyncio.run(
                _answer_killing_hop(net, client, hop=hop, kill_after=kill_after)
            )
            assert got == expected, "the same text as without the failure"
            assert len(jobs) == 1, "one job, amended: no second job re-bills the history"
            assert route[hop].url == jobs[0].replacements[0].url, "it ended on the replacement"
            _check_amended(net, client, jobs[0], hop, escrow_before)
