"""Reservations a stopped gateway left behind are settled from the chain on the next start."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.devnet import Devnet
from sharedllm.chain.registry import NodeConfig
from sharedllm.gateway.api_keys import ApiKeys
from sharedllm.gateway.budget_payer import reconcile
from sharedllm.protocol.job import Job, job_id, sign_job

pytestmark = pytest.mark.chain

MODEL_ID = "0x" + "5e" * 32
PRICE = 10**12


@pytest.fixture(scope="module")
def devnet() -> Iterator[Devnet]:
    with Devnet() as net:
        chain = net.chain()
        cfg = NodeConfig("http://127.0.0.1:9100", "0x" + "01" * 32, MODEL_ID, 0, 30, PRICE)
        chain.registry.stake(dev_account(1), 100 * WEI_PER_SHARE, cfg, chain.token)
        chain.market.deposit(dev_account(9), WEI_PER_SHARE, chain.token)
        yield net


def test_reconcile_charges_what_the_chain_says_and_frees_the_rest(
    devnet: Devnet, tmp_path: Path
) -> None:
    chain = devnet.chain()
    operator, node = dev_account(9), dev_account(1)
    now = chain.w3.eth.get_block("latest")["timestamp"]

    def job(nonce: int, deadline: int) -> Job:
        return Job.from_json({
            "modelId": MODEL_ID, "route": [node.address], "spanStarts": [0], "spanEnds": [30],
            "maxTokens": 20, "maxPricePerToken": PRICE, "nonce": nonce, "deadline": deadline,
            "client": operator.address,
        })  # fmt: skip

    served, pending, expired = job(1, now + 600), job(2, now + 600), job(3, now - 1)
    signature = sign_job(served, operator, chain.chain_id, chain.market.address)
    chain.market.submit_result(node, served, signature, 7, b"\x01" * 32)
    worst = 20 * 30 * PRICE

    keys = ApiKeys(tmp_path / "keys.db")
    try:
        key, _ = keys.add("alice", WEI_PER_SHARE)
        for j in (served, pending, expired):
            rid = keys.reserve(key.key_id, worst)
            keys.attach(rid, job_id(j, chain.chain_id, chain.market.address), j.deadline)
        keys.reserve(key.key_id, worst)  # reserved, then the process died before signing

        assert asyncio.run(reconcile(keys, chain)) == 3
        alice = keys.get("alice")
        assert alice.spent == 7 * 30 * PRICE  # the served job, at its on-chain cost
        assert alice.reserved == worst  # the job still inside its deadline stays held
        (left,) = keys.reservations()
        assert left.job_id == job_id(pending, chain.chain_id, chain.market.address)
    finally:
        keys.close()
