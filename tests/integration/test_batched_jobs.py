"""Paid answers settled in batches: real anvil, three real paid nodes posting batches."""

from __future__ import annotations

import json
import time

import pytest
from links import call_json, pinned_ssl

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.batch_tree import batch_from_json, entries_hash
from sharedllm.cli import node_main
from sharedllm.localnet import LocalNetwork
from sharedllm.node.ledger import FINALIZED, Ledger

pytestmark = [pytest.mark.chain, pytest.mark.model, pytest.mark.nodes]

PROMPT = "What is the capital of France?"
CLIENTS = (4, 5, 6)
ANSWERS_EACH = 2
SETTLE_S = 120


@pytest.fixture(scope="module")
def net(model_home):
    args = ("--threads", "1", "--batch-size", str(len(CLIENTS) * ANSWERS_EACH), "--batch-age", "30")
    with LocalNetwork(node_args=args) as network:
        yield network


def _finalized(ledger: Ledger, job_ids: list[str], what: str) -> list:
    """The ledger rows of ``job_ids`` once every one is finalized."""
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        rows = [ledger.get(j) for j in job_ids]
        if all(r is not None and r.status == FINALIZED for r in rows):
            return rows
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}: {[r and r.status for r in rows]}")


def test_answers_from_several_clients_settle_in_one_batch_exactly(net: LocalNetwork) -> None:
    chain = net.chain
    clients = [dev_account(i) for i in CLIENTS]
    for client in clients:
        chain.market.deposit(client, 2 * WEI_PER_SHARE, chain.token)
    nodes = [a.address for a in net.accounts]
    escrow = {c.address: chain.market.escrow_of(c.address) for c in clients}
    wallets = {n: chain.token.balance_of(n) for n in nodes}
    pool = chain.market.reward_pool()
    served = []
    for _ in range(ANSWERS_EACH):
        for client in clients:
            text, jobs = net.generate(PROMPT, client, max_tokens=6)
            assert "Paris" in text
            served.append((client.address, jobs[-1]))

    # Every job is in the last hop's ledger, in one posted batch, and nothing on its own.
    poster = Ledger(net.ledger_path(len(nodes) - 1))
    job_ids = [job.signed.job_id for _, job in served]
    rows = _finalized(poster, job_ids, "the batch to be paid")
    batch_ids = {r.batch_id for r in rows}
    assert len(batch_ids) == 1 and None not in batch_ids
    batch_id = batch_ids.pop()
    for job_id in job_ids:
        assert chain.market.get_job(job_id).status == "None", "no job settled on its own"
    assert chain.batches.get_batch(batch_id).status == "Finalized"

    # Balances to the wei: each client paid its jobs, each node its layers of every job.
    price = chain.registry.get_node(nodes[0]).price_per_token
    reward_per_token = chain.market.params()["rewardPerToken"]
    paid_by = {c.address: 0 for c in clients}
    owed = dict.fromkeys(nodes, 0)
    rewards = dict.fromkeys(nodes, 0)
    for client, job in served:
        for node, (start, end) in zip(nodes, net.spans, strict=True):
            share = job.tokens * (end - start) * price
            paid_by[client] += share
            owed[node] += share
            rewards[node] += reward_per_token * job.tokens * (end - start) // 30
    for client in clients:
        assert (
            chain.market.escrow_of(client.address)
            == escrow[client.address] - paid_by[client.address]
        )
    for node in nodes:
        assert chain.token.balance_of(node) == wallets[node] + owed[node] + rewards[node]
        assert chain.batches.paid(batch_id, node) == (owed[node], rewards[node])
    assert chain.market.reward_pool() == pool - sum(rewards.values())

    # The other hops learned the batch from the poster and recorded the same pay.
    for i in range(len(nodes) - 1):
        rows = _finalized(Ledger(net.ledger_path(i)), job_ids, f"hop {i} to record the batch")
        assert {r.batch_id for r in rows} == {batch_id}


def test_the_poster_serves_the_batch_it_posted(net: LocalNetwork) -> None:
    chain = net.chain
    batch_id = chain.batches.batch_count()
    assert batch_id >= 1
    poster = chain.batches.get_batch(batch_id).poster
    endpoint = chain.registry.get_node(poster).endpoint
    link = pinned_ssl(*net.nodes)
    status, body = call_json(f"{endpoint}/batches/{batch_id}", link)
    assert status == 200
    entries = batch_from_json(
        body, chain.chain_id, chain.market.address, chain.market.params()["rewardPerToken"]
    )
    assert entries_hash(entries) == chain.batches.get_batch(batch_id).entries_hash
    status, missing = call_json(f"{endpoint}/batches/{batch_id + 1000}", link)
    assert (status, missing["code"]) == (404, "BATCH_UNKNOWN")


def test_node_status_shows_what_batches_paid(
    net: LocalNetwork, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    last = len(net.accounts) - 1
    monkeypatch.setenv("SHAREDLLM_HOME", str(net.home / f"node{last}"))
    args = ["status", "--deployment", str(net.devnet.deployment_path), "--dev-account",
            str(net.account_indexes[last])]  # fmt: skip
    assert node_main([*args, "--json"]) == 0
    earned = json.loads(capsys.readouterr().out)["earnings"]
    ledger = Ledger(net.ledger_path(last))
    done = list(ledger.with_status(FINALIZED))
    assert earned["finalizedJobs"] == len(done) > 0
    assert int(earned["paid"]) == sum(j.payout for j in done)
    assert earned["pendingBatches"] == []
    assert node_main(args) == 0
    assert f"over {len(done)} job(s)" in capsys.readouterr().out
