"""Amended jobs against the real JobMarket: the Python amendment signer and record replica,
the node's checks of an amendment (the contract's codes), and what a survivor refuses."""

from __future__ import annotations

import pytest
from chain_helpers import MODEL_ID, PRICES, Network

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.registry import NodeConfig
from sharedllm.errors import ContractRevert, JobRejected
from sharedllm.node.chain_view import ChainJobView
from sharedllm.node.job_checks import check_amendments
from sharedllm.node.paid_admission import amendment_conflict
from sharedllm.protocol.amendment import (
    Amendment,
    amendment_digest,
    record_hops,
    sign_amendment,
)
from sharedllm.protocol.job import job_digest, job_id, sign_job
from sharedllm.protocol.receipts import Receipt
from sharedllm.protocol.types import Address

pytestmark = pytest.mark.chain

COMMITMENT = b"\x42" * 32
SPARE_PRICE = 2 * 10**12  # at hop 1's price, under the job's cap


def _spare(network: Network, start: int = 10, end: int = 20, price: int = SPARE_PRICE):
    spare = dev_account(5)
    cfg = NodeConfig(
        endpoint="http://127.0.0.1:9199",
        pubkey="0x" + "0e" * 32,
        model_id=MODEL_ID,
        start=start,
        end=end,
        price_per_token=price,
    )
    network.chain.registry.stake(spare, 100 * WEI_PER_SHARE, cfg, network.chain.token)
    return spare


def test_python_amendment_digest_equals_the_contracts(network: Network) -> None:
    chain = network.chain
    jid = job_id(network.job(), chain.chain_id, chain.market.address)
    job_hash = bytes.fromhex(jid[2:])
    for a in (
        Amendment(0, Address(network.nodes[0].address), 0),
        Amendment(1, Address(network.client.address), 7),
        Amendment(254, Address(network.nodes[2].address), 2**32 - 1),
    ):
        got = amendment_digest(a, job_hash, chain.chain_id, chain.market.address)
        assert got == chain.market.hash_amendment(jid, a)


def test_a_python_signed_amendment_settles_as_the_replica_says(network: Network) -> None:
    chain = network.chain
    spare = _spare(network)
    job = network.job()
    jid = job_id(job, chain.chain_id, chain.market.address)
    signature = sign_job(job, network.client, chain.chain_id, chain.market.address)
    amendment = sign_amendment(
        Amendment(1, Address(spare.address), 5),
        bytes.fromhex(jid[2:]),
        network.client,
        chain.chain_id,
        chain.market.address,
    )
    escrow = chain.market.escrow_of(network.client.address)
    submitted = chain.market.submit_amended(
        network.nodes[2], job, signature, (amendment,), 9, COMMITMENT
    )
    record = chain.market.get_job(jid)
    prices = {n.address: p for n, p in zip(network.nodes, PRICES, strict=True)}
    prices[spare.address] = SPARE_PRICE
    replica = record_hops(job.route, (amendment,), 9)
    assert record.hops == tuple(e.node for e in replica)
    assert record.amounts == tuple(e.positions * 10 * prices[e.node] for e in replica)
    assert submitted.cost == sum(record.amounts)
    assert escrow - chain.market.escrow_of(network.client.address) == submitted.cost
    assert chain.market.replacements_of(jid) == 1
    (event,) = chain.market.amendments_of(jid)
    assert (event.hop, event.replacement, event.from_position, event.index) == (
        1,
        spare.address,
        5,
        3,
    )
    assert "0x" + job_digest(job, chain.chain_id, chain.market.address).hex() == jid


def test_the_node_refuses_amendments_the_chain_would(network: Network) -> None:
    """Proofs of concept, at the node's door: an amendment signed by someone else, and a
    replacement that does not serve the hop's span, are refused with the contract's codes
    before the node serves a step under them."""
    chain = network.chain
    spare = _spare(network)
    view = ChainJobView(chain)
    job = network.job()
    jid = job_id(job, chain.chain_id, chain.market.address)
    job_hash = bytes.fromhex(jid[2:])
    forged = sign_amendment(
        Amendment(1, Address(spare.address), 3),
        job_hash,
        network.nodes[0],
        chain.chain_id,
        chain.market.address,
    )
    with pytest.raises(JobRejected) as err:
        check_amendments(job, jid, (forged,), view)
    assert err.value.code == "InvalidAmendmentSignature"
    signature = sign_job(job, network.client, chain.chain_id, chain.market.address)
    with pytest.raises(ContractRevert) as revert:
        chain.market.submit_amended(network.nodes[2], job, signature, (forged,), 9, COMMITMENT)
    assert revert.value.code == "InvalidAmendmentSignature"

    wrong_hop = sign_amendment(
        Amendment(0, Address(spare.address), 3),
        job_hash,
        network.client,
        chain.chain_id,
        chain.market.address,
    )
    with pytest.raises(JobRejected) as err:
        check_amendments(job, jid, (wrong_hop,), view)
    assert err.value.code == "SpanMismatch"
    with pytest.raises(ContractRevert) as revert:
        chain.market.submit_amended(network.nodes[2], job, signature, (wrong_hop,), 9, COMMITMENT)
    assert revert.value.code == "SpanMismatch"

    honest = sign_amendment(
        Amendment(1, Address(spare.address), 3),
        job_hash,
        network.client,
        chain.chain_id,
        chain.market.address,
    )
    records, extra = check_amendments(job, jid, (honest,), view)
    assert records[spare.address].price_per_token == SPARE_PRICE
    assert extra == job.max_tokens * 10 * SPARE_PRICE


def _chain(job_hash: bytes, step: int, start: int, positions: int, hops: int) -> list[Receipt]:
    return [
        Receipt(job_hash, h, step, start, positions, b"\x00" * 32, b"\x00" * 32)
        for h in range(hops)
    ]


def test_a_survivor_refuses_an_amendment_that_would_underpay_the_old_holder() -> None:
    """Proof of concept: a client that got answers through hop 1 up to position 12 amends
    hop 1 from position 4, so that the old holder is owed 4 positions and the replacement
    (replaying them) the rest. The last hop holds hop 1's receipts to position 12 and refuses;
    an amendment from 12 on is taken."""
    job = b"\x01" * 32
    chains = [_chain(job, 0, 0, 10, 3), _chain(job, 1, 10, 1, 3), _chain(job, 2, 11, 1, 3)]
    spare = Address("0x" + "11" * 20)
    early = Amendment(1, spare, 4)
    assert "already served to position 12" in (amendment_conflict(2, 12, chains, early) or "")
    assert amendment_conflict(2, 12, chains, Amendment(1, spare, 12)) is None
    assert "past this hop's 12" in (
        amendment_conflict(2, 12, chains, Amendment(1, spare, 13)) or ""
    )
    assert "which this node serves" in (
        amendment_conflict(1, 12, chains, Amendment(1, spare, 12)) or ""
    )
