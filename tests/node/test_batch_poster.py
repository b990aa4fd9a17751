"""The node's batch poster against a real anvil: what it posts, and what a node killed at any
point between writing a batch and recording it posts again (nothing twice, nothing lost)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.batch_tree import batch_from_json
from sharedllm.chain.devnet import Devnet
from sharedllm.chain.registry import NodeConfig
from sharedllm.node.batch_settlement import BatchPolicy, BatchPoster
from sharedllm.node.ledger import (
    BATCH_FINALIZED,
    BATCH_POSTED,
    BATCH_POSTING,
    FINALIZED,
    SERVED,
    SUBMITTED,
    Ledger,
)
from sharedllm.protocol.job import Job, job_id, sign_job

pytestmark = pytest.mark.chain

MODEL_ID = "0x" + "5e" * 32
PRICE = 10**12
SPANS = ((0, 10), (10, 20), (20, 30))


def _config(i: int, price: int = PRICE) -> NodeConfig:
    start, end = SPANS[i]
    return NodeConfig(f"http://127.0.0.1:{9300 + i}", "0x" + "02" * 32, MODEL_ID, start, end,
                      price)  # fmt: skip


def _staked(net: Devnet) -> Devnet:
    chain = net.chain()
    for i in range(len(SPANS)):
        chain.registry.stake(dev_account(1 + i), 100 * WEI_PER_SHARE, _config(i), chain.token)
    for client in (4, 5):
        chain.market.deposit(dev_account(client), 10 * WEI_PER_SHARE, chain.token)
    return net


@pytest.fixture(scope="module")
def devnet() -> Iterator[Devnet]:
    with Devnet() as net:
        yield _staked(net)


def _serve(devnet: Devnet, ledger: Ledger, client: int, tokens: int = 5) -> str:
    """A job served on the three nodes, recorded as the last hop records it."""
    chain = devnet.chain()
    account = dev_account(client)
    job = Job.from_json({
        "modelId": MODEL_ID, "route": [dev_account(1 + i).address for i in range(3)],
        "spanStarts": [s for s, _ in SPANS], "spanEnds": [e for _, e in SPANS],
        "maxTokens": 32, "maxPricePerToken": PRICE, "nonce": time.time_ns(),
        "deadline": chain.now() + 600, "client": account.address,
    })  # fmt: skip
    signature = sign_job(job, account, chain.chain_id, chain.market.address)
    jid = job_id(job, chain.chain_id, chain.market.address)
    ledger.record_served(jid, job.to_json(), "0x" + signature.hex(), 2, 3, tokens,
                         "0x" + "42" * 32, [])  # fmt: skip
    return jid


def _poster(devnet: Devnet, tmp_path: Path, size: int = 3) -> tuple[BatchPoster, Ledger]:
    ledger = Ledger(tmp_path / "ledger.db")
    policy = BatchPolicy(size=size, age=3600, margin=30)
    return BatchPoster(devnet.chain(), dev_account(3), ledger, policy), ledger


def _settle(poster: BatchPoster, ledger: Ledger) -> None:
    served = [j for j in ledger.with_status(SERVED) if j.submits]
    poster.settle(served, max(time.time(), poster.chain.now()))


def test_a_full_batch_is_posted_once_and_paid(devnet: Devnet, tmp_path: Path) -> None:
    chain = devnet.chain()
    poster, ledger = _poster(devnet, tmp_path)
    jobs = [_serve(devnet, ledger, 4), _serve(devnet, ledger, 5)]
    _settle(poster, ledger)
    assert ledger.batches() == [], "two answers of three: not due yet"
    jobs.append(_serve(devnet, ledger, 4))
    count = chain.batches.batch_count()
    _settle(poster, ledger)
    assert chain.batches.batch_count() == count + 1
    (row,) = ledger.batches(BATCH_POSTED)
    assert {ledger.get(j).status for j in jobs} == {SUBMITTED}
    assert {ledger.get(j).batch_id for j in jobs} == {row["batch_id"]}

    _settle(poster, ledger)  # inside the window: nothing to do
    assert chain.batches.get_batch(row["batch_id"]).status == "Posted"
    devnet.advance_time(chain.deployment.params.challenge_window + 1)
    _settle(poster, ledger)
    assert chain.batches.get_batch(row["batch_id"]).status == "Finalized"
    assert ledger.batches(BATCH_FINALIZED)[0]["batch_id"] == row["batch_id"]
    paid = [ledger.get(j) for j in jobs]
    assert {p.status for p in paid} == {FINALIZED}
    assert (
        sum(p.payout for p in paid)
        == chain.batches.paid(row["batch_id"], dev_account(3).address)[0]
    )


def test_hops_that_reprice_or_leave_after_serving_are_still_batched_at_their_old_price(
    tmp_path: Path,
) -> None:
    """Proof of concept, then the fix: after three answers were served, hop 1 raises its
    price above the jobs' cap and hop 0 asks to leave. The poster used to refuse every job
    (PriceAboveCap, at the new price), and the chain a batch crediting hop 0 (NodeNotActive):
    no hop paid for work done. Now the batch prices each hop as the market does, by the
    terms the jobs were sent under, and pays all three."""
    with Devnet() as fresh:
        net = _staked(fresh)
        chain = net.chain()
        poster, ledger = _poster(net, tmp_path)
        jobs = [_serve(net, ledger, 4), _serve(net, ledger, 5), _serve(net, ledger, 4)]
        chain.registry.update_config(dev_account(2), _config(1, price=5 * PRICE))
        chain.registry.request_unstake(dev_account(1))
        before = [chain.token.balance_of(dev_account(1 + i).address) for i in range(3)]
        _settle(poster, ledger)
        (row,) = ledger.batches(BATCH_POSTED)
        posted = batch_from_json(json.loads(row["body"]), chain.chain_id, chain.market.address,
                                 poster.reward_per_token)  # fmt: skip
        assert {p for e in posted for j in e.jobs for p in j.prices} == {PRICE}
        net.advance_time(chain.deployment.params.challenge_window + 1)
        _settle(poster, ledger)
        assert {ledger.get(j).status for j in jobs} == {FINALIZED}
        after = [chain.token.balance_of(dev_account(1 + i).address) for i in range(3)]
        tokens = sum(ledger.get(j).tokens for j in jobs)
        for i in range(3):
            assert after[i] - before[i] >= tokens * 10 * PRICE, f"hop {i} paid for its layers"


def test_killed_after_sending_a_batch_the_node_records_it_and_sends_nothing(
    devnet: Devnet, tmp_path: Path
) -> None:
    """The ledger says ``posting``, the chain has the batch: a crash after the transaction
    was mined and before it was recorded. The restarted poster finds it and records it."""
    chain = devnet.chain()
    poster, ledger = _poster(devnet, tmp_path)
    jobs = [_serve(devnet, ledger, 4) for _ in range(3)]
    _settle(poster, ledger)
    (row,) = ledger.batches(BATCH_POSTED)
    # Roll the ledger back to the moment before the transaction was recorded.
    with ledger._db.conn:
        ledger._db["batches"].update(row["batch_key"], {"status": BATCH_POSTING, "batch_id": None})
        for j in jobs:
            ledger._db["jobs"].update(j, {"status": SERVED, "batch_id": None})
    count = chain.batches.batch_count()

    restarted, ledger = _poster(devnet, tmp_path)
    _settle(restarted, ledger)
    assert chain.batches.batch_count() == count, "nothing posted twice"
    assert ledger.batches(BATCH_POSTED)[0]["batch_id"] == row["batch_id"]
    assert {ledger.get(j).status for j in jobs} == {SUBMITTED}


def test_killed_before_sending_a_batch_the_node_posts_it_once(
    devnet: Devnet, tmp_path: Path
) -> None:
    """The ledger says ``posting`` and the chain has no such batch: the restarted poster
    posts exactly the batch it had written, once."""
    chain = devnet.chain()
    poster, ledger = _poster(devnet, tmp_path, size=2)
    jobs = [_serve(devnet, ledger, 5) for _ in range(2)]
    # What _open writes before sending, without the send.
    real_send = poster._send
    poster._send = lambda row, resumed: None  # the process dies before the transaction leaves
    _settle(poster, ledger)
    poster._send = real_send
    (written,) = ledger.batches(BATCH_POSTING)
    count = chain.batches.batch_count()

    restarted, ledger = _poster(devnet, tmp_path, size=2)
    _settle(restarted, ledger)
    _settle(restarted, ledger)
    assert chain.batches.batch_count() == count + 1, "posted exactly once"
    (row,) = ledger.batches(BATCH_POSTED)
    assert row["batch_key"] == written["batch_key"]
    entries = batch_from_json(json.loads(row["body"]), chain.chain_id, chain.market.address, 0)
    assert sorted("0x" + j.job_hash.hex() for e in entries for j in e.jobs) == sorted(jobs)


def test_contract_wallet_and_high_s_jobs_are_not_batched(devnet: Devnet, tmp_path: Path) -> None:
    poster, ledger = _poster(devnet, tmp_path)
    jid = _serve(devnet, ledger, 4)
    good = ledger.get(jid)
    now = max(time.time(), poster.chain.now())
    assert poster.batchable(good, now)
    sig = bytes.fromhex(good.signature[2:])
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    twin = (
        sig[:32]
        + (n - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big")
        + bytes([55 - sig[64]])
    )
    assert not poster.batchable(replace(good, signature="0x" + twin.hex()), now)
    soon = replace(good, job={**good.job, "deadline": int(now) + 10})
    assert not poster.batchable(soon, now), "too close to its deadline for a batch"
