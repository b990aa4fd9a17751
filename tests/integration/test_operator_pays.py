"""Compute as currency: a node operator's earnings pay for that operator's own paid answer,
from the same keystore the node signs with, through `sharedllm deposit`.

The operator's node is priced above the others so that what it earns on one answer for
someone else covers the escrow its own (shorter) job must show up front.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from sharedllm.chain.accounts import dev_account, load_keystore
from sharedllm.chain.amounts import WEI_PER_SHARE, format_share
from sharedllm.cli import sharedllm_main
from sharedllm.localnet import NODE_PRICE, LocalNetwork

pytestmark = [pytest.mark.chain, pytest.mark.model, pytest.mark.nodes]

SETTLE_S = 90
PRICES = (20 * NODE_PRICE, NODE_PRICE, NODE_PRICE)
PASSWORD = "operator-password"


def _hop_earnings(net: LocalNetwork, tokens: int, hop: int) -> int:
    start, end = net.spans[hop]
    reward_per_token = net.chain.market.params()["rewardPerToken"]
    return tokens * (end - start) * PRICES[hop] + reward_per_token * tokens * (end - start) // 30


def test_an_operator_spends_what_its_node_earned_on_its_own_answer(
    model_home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalNetwork(prices=PRICES) as net:
        chain = net.chain
        operator = net.accounts[0]  # the node serving layers 0:10
        keystore = tmp_path / "operator.json"
        keystore.write_text(json.dumps(Account.encrypt(operator.key, PASSWORD)))
        password_file = tmp_path / "password"
        password_file.write_text(PASSWORD)
        wallet_at_start = chain.token.balance_of(operator.address)
        assert chain.market.escrow_of(operator.address) == 0

        # Someone else's answer: the operator's node earns its share and reward.
        client = dev_account(4)
        chain.market.deposit(client, 1 * WEI_PER_SHARE, chain.token)
        _, jobs = net.generate("Tell me a story about a dragon.", client, max_tokens=24)
        served = net.wait_for_job(jobs[-1].signed.job_id, "Finalized", timeout=SETTLE_S)
        earned = _hop_earnings(net, served.tokens_served, 0)
        assert chain.token.balance_of(operator.address) == wallet_at_start + earned

        # The operator moves exactly those earnings into escrow with the node's keystore.
        code = sharedllm_main(
            [
                "deposit", format_share(earned),
                "--keystore", str(keystore), "--password-file", str(password_file),
                "--deployment", str(net.devnet.deployment_path), "--rpc-url", net.devnet.rpc_url,
                "--json",
            ]
        )  # fmt: skip
        shown = json.loads(capsys.readouterr().out)
        assert code == 0 and int(shown["escrow"]) == earned
        assert shown["client"] == operator.address
        assert chain.token.balance_of(operator.address) == wallet_at_start

        # ... and pays for its own answer from them.
        me = load_keystore(keystore, PASSWORD)
        text, own_jobs = net.generate("What is the capital of France?", me, max_tokens=2)
        assert text
        own = net.wait_for_job(own_jobs[-1].signed.job_id, "Finalized", timeout=SETTLE_S)
        tokens = own.tokens_served
        cost = sum(
            tokens * (end - start) * p for (start, end), p in zip(net.spans, PRICES, strict=True)
        )
        assert own.cost == cost == own_jobs[-1].cost
        assert chain.market.escrow_of(operator.address) == earned - cost
        # Its own hop of its own job paid it back, like any other job.
        assert chain.token.balance_of(operator.address) == wallet_at_start + _hop_earnings(
            net, tokens, 0
        )
