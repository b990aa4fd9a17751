"""The Python batch builder against the real BatchSettlement: hashes, posting, payment."""

from __future__ import annotations

import pytest
from chain_helpers import PRICES, Network
from eth_utils import keccak

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.batch_tree import (
    BatchedJob,
    batch_payout,
    batchable_signature,
    build_batch,
    entries_hash,
    merkle_proof,
    merkle_root,
)
from sharedllm.errors import ContractRevert
from sharedllm.protocol.job import job_digest, sign_job

pytestmark = pytest.mark.chain

COMMITMENT = b"\x42" * 32


def _batched(network: Network, account, tokens: int = 7, **changes) -> BatchedJob:
    chain = network.chain
    job = network.job(client=account.address, **changes)
    signature = sign_job(job, account, chain.chain_id, chain.market.address)
    return BatchedJob(
        job,
        job_digest(job, chain.chain_id, chain.market.address),
        signature,
        0,
        tokens,
        COMMITMENT,
        PRICES,
    )


def _second_client(network: Network):
    other = dev_account(5)
    network.chain.market.deposit(other, 100 * WEI_PER_SHARE, network.chain.token)
    return other


def test_python_hashes_equal_the_contracts(network: Network) -> None:
    chain = network.chain
    other = _second_client(network)
    jobs = {
        network.client.address: [_batched(network, network.client, t) for t in (1, 5, 9)],
        other.address: [_batched(network, other, 32)],
    }
    entries = build_batch(jobs, reward_per_token=10**12)
    assert [int(e.client, 16) for e in entries] == sorted(int(e.client, 16) for e in entries)
    for entry in entries:
        assert chain.batches.entry_hash(entry) == entry.hash()
        for job in entry.jobs:
            assert chain.batches.leaf_hash(job) == job.leaf()
            assert batchable_signature(job.signature)


def test_merkle_proofs_of_odd_trees() -> None:
    leaves = [bytes([k]) * 32 for k in range(7)]
    root = merkle_root(leaves)
    for index, leaf in enumerate(leaves):
        node = leaf
        for sibling in merkle_proof(leaves, index):
            node = keccak(min(node, sibling) + max(node, sibling))
        assert node == root, f"leaf {index}"


def test_a_batch_debits_each_client_once_and_pays_each_node_once(network: Network) -> None:
    chain = network.chain
    other = _second_client(network)
    jobs = {
        network.client.address: [_batched(network, network.client, 4) for _ in range(3)],
        other.address: [_batched(network, other, 6) for _ in range(2)],
    }
    entries = build_batch(jobs, reward_per_token=chain.market.params()["rewardPerToken"])
    escrow = {a: chain.market.escrow_of(a) for a in jobs}
    posted = chain.batches.post(network.nodes[-1], entries)
    assert posted.unfunded == 0
    for entry in entries:
        assert chain.market.escrow_of(entry.client) == escrow[entry.client] - entry.debit
    record = chain.batches.get_batch(posted.batch_id)
    assert record.status == "Posted" and record.entries_hash == entries_hash(entries)
    assert record.outstanding == sum(e.debit for e in entries) == posted.total

    with pytest.raises(ContractRevert) as err:
        chain.batches.finalize(network.nodes[0], posted.batch_id, posted.payout, gas=500_000)
    assert err.value.code == "WindowOpen"
    assert posted.payout == batch_payout(entries)

    before = [chain.token.balance_of(n.address) for n in network.nodes]
    network.devnet.advance_time(chain.market.params()["challengeWindow"] + 1)
    chain.batches.finalize(network.nodes[0], posted.batch_id, posted.payout, gas=500_000)
    assert chain.batches.get_batch(posted.batch_id).status == "Finalized"
    for node, was, price in zip(network.nodes, before, PRICES, strict=True):
        amount, reward = chain.batches.paid(posted.batch_id, node.address)
        assert amount == (3 * 4 + 2 * 6) * 10 * price
        assert chain.token.balance_of(node.address) - was == amount + reward
    assert chain.market.total_batched() == 0


def test_an_entry_beyond_the_escrow_is_posted_unfunded(network: Network) -> None:
    chain = network.chain
    poor = dev_account(6)
    chain.token.transfer(network.client, poor.address, WEI_PER_SHARE)
    chain.market.deposit(poor, 10**15, chain.token)
    job = _batched(network, poor, 32)
    entries = build_batch({poor.address: [job]}, reward_per_token=0)
    assert entries[0].debit > 10**15
    posted = chain.batches.post(network.nodes[-1], entries)
    assert posted.unfunded == 1 and posted.total == 0
    assert posted.payout == batch_payout(entries, unfunded=1) and not posted.payout.nodes
    assert chain.market.escrow_of(poor.address) == 10**15


def test_high_s_signatures_are_not_batchable(network: Network) -> None:
    job = _batched(network, network.client)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(job.signature[32:64], "big")
    twin = job.signature[:32] + (n - s).to_bytes(32, "big") + bytes([55 - job.signature[64]])
    assert not batchable_signature(twin)
    bad = BatchedJob(job.job, job.job_hash, twin, 0, 7, COMMITMENT, PRICES)
    poster = network.nodes[-1].address
    fault = network.chain.batches.leaf_fault(bad, network.client.address, poster, 0)
    assert fault == "BadSignature"
