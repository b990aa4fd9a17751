"""A node refuses every bad job with the code the JobMarket would revert with, and nothing moves."""

from __future__ import annotations

import pytest
from chain_helpers import PRICES, Network

from sharedllm.errors import ContractRevert, JobRejected
from sharedllm.node.chain_view import ChainJobView
from sharedllm.node.job_checks import check_job
from sharedllm.protocol.job import Job, sign_job

COMMITMENT = b"\x42" * 32
OTHER_MARKET = "0x000000000000000000000000000000000000c0DE"


def _now(network: Network) -> int:
    return network.chain.w3.eth.get_block("latest")["timestamp"]


def _balances(network: Network) -> tuple[int, ...]:
    chain = network.chain
    return (
        chain.market.escrow_of(network.client.address),
        chain.market.total_locked(),
        *(chain.token.balance_of(n.address) for n in network.nodes),
    )


def _signed(network: Network, job: Job, chain_id: int | None = None, market: str | None = None):
    chain = network.chain
    return sign_job(job, network.client, chain_id or chain.chain_id, market or chain.market.address)


def _tampered(network: Network):
    job = network.job()
    signature = _signed(network, job)
    return Job.from_json({**job.to_json(), "maxTokens": job.max_tokens + 1}), signature, 4


CASES = {
    "expired": (
        lambda n: (lambda j: (j, _signed(n, j), 4))(n.job(deadline=_now(n) - 1)),
        "JobExpired",
    ),
    "underfunded": (
        lambda n: (lambda j: (j, _signed(n, j), 4_000_000_000))(n.job(maxTokens=4_000_000_000)),
        "InsufficientEscrow",
    ),
    "wrong chain": (
        lambda n: (lambda j: (j, _signed(n, j, chain_id=1), 4))(n.job()),
        "InvalidSignature",
    ),
    "wrong market": (
        lambda n: (lambda j: (j, _signed(n, j, market=OTHER_MARKET), 4))(n.job()),
        "InvalidSignature",
    ),
    "tampered": (_tampered, "InvalidSignature"),
    # Attack: hop 1 (registered 10:20) named for 9:20, to be paid for a layer it never ran.
    "outside its span": (
        lambda n: (lambda j: (j, _signed(n, j), 4))(
            n.job(spanStarts=[0, 9, 20], spanEnds=[9, 20, 30])
        ),
        "SpanMismatch",
    ),
    "unsigned": (lambda n: (n.job(), b"", 4), "InvalidSignature"),
}


@pytest.mark.chain
@pytest.mark.parametrize("case", sorted(CASES))
def test_node_and_contract_refuse_with_the_same_code(network: Network, case: str) -> None:
    make, code = CASES[case]
    job, signature, tokens = make(network)
    node = network.nodes[-1]
    view = ChainJobView(network.chain)
    before = _balances(network)

    with pytest.raises(JobRejected) as refused:
        check_job(job, signature, node.address, view, tokens=tokens, now=_now(network))
    with pytest.raises(ContractRevert) as reverted:
        network.chain.market.submit_result(node, job, signature, tokens, COMMITMENT)

    assert refused.value.code == code
    assert reverted.value.code == code
    assert _balances(network) == before


@pytest.mark.chain
def test_replayed_job_is_refused_by_both(network: Network) -> None:
    job = network.job()
    signature = _signed(network, job)
    node = network.nodes[-1]
    view = ChainJobView(network.chain)
    check_job(job, signature, node.address, view, tokens=4, now=_now(network))
    network.chain.market.submit_result(node, job, signature, 4, COMMITMENT)
    before = _balances(network)

    with pytest.raises(JobRejected) as refused:
        check_job(job, signature, node.address, view, tokens=4, now=_now(network))
    with pytest.raises(ContractRevert) as reverted:
        network.chain.market.submit_result(node, job, signature, 4, COMMITMENT)
    assert refused.value.code == reverted.value.code == "JobAlreadySubmitted"
    assert _balances(network) == before


@pytest.mark.chain
def test_a_pending_withdrawal_that_lands_before_the_deadline_is_not_usable(
    network: Network,
) -> None:
    chain = network.chain
    view = ChainJobView(chain)
    escrow = chain.market.escrow_of(network.client.address)
    job = network.job(maxTokens=1000, deadline=_now(network) + 600)
    signature = _signed(network, job)
    check_job(job, signature, network.nodes[0].address, view, tokens=10, now=_now(network))

    chain.market.request_withdrawal(network.client, escrow)
    # The withdrawal delay outlasts any job the node accepts, so the escrow still counts.
    check_job(job, signature, network.nodes[0].address, view, tokens=10, now=_now(network))
    ready_at = chain.market.pending_withdrawal(network.client.address).ready_at
    assert ready_at > job.deadline
    assert view.available_escrow(network.client.address, ready_at) == 0


@pytest.mark.chain
def test_a_route_over_parts_of_spans_is_accepted_and_costs_the_layers_it_runs(
    network: Network,
) -> None:
    """Hop 0 runs all of its 0:10, hop 1 only 10:15 of its 10:20: both the node's checks and
    the market accept it, and each hop is owed its positions times the layers it ran."""
    chain = network.chain
    job = network.job(
        route=[n.address for n in network.nodes[:2]], spanStarts=[0, 10], spanEnds=[10, 15]
    )
    signature = _signed(network, job)
    node = network.nodes[1]
    _, hops = check_job(
        job, signature, node.address, ChainJobView(chain), tokens=4, now=_now(network)
    )
    assert [(h.start, h.end) for h in hops] == [(0, 10), (10, 20)]  # the registrations
    escrow = chain.market.escrow_of(network.client.address)
    submitted = chain.market.submit_result(node, job, signature, 4, COMMITMENT)
    record = chain.market.get_job(submitted.job_id)
    assert record.layers == (10, 5)
    assert record.amounts == (4 * 10 * PRICES[0], 4 * 5 * PRICES[1])
    assert escrow - chain.market.escrow_of(network.client.address) == sum(record.amounts)
