"""A paying client killed mid-answer (SIGKILL, no goodbye): the nodes close its idle sessions,
the last hop submits the tokens that were served, and the job is paid like any other, from
the client's escrow and to the wei."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from links import call_json, pinned_ssl

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.localnet import NODE_PRICE, LocalNetwork
from sharedllm.processes import program

pytestmark = [pytest.mark.chain, pytest.mark.model, pytest.mark.nodes]

CLIENT = 6
IDLE_S = 2  # the nodes' --idle-timeout: how soon a vanished client's sessions close
PROMPT = "Tell me a short story about a robot who learns to paint."


@pytest.fixture(scope="module")
def net(model_home: Path):
    with LocalNetwork(node_args=("--threads", "1", "--idle-timeout", str(IDLE_S))) as n:
        yield n


def _sessions_open(node) -> int:
    status, info = call_json(f"{node.url}/info", pinned_ssl(node))
    assert status == 200, info
    return int(info["sessions_open"])


def _submitted(net: LocalNetwork, client: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = net.chain.market.contract.events.ResultSubmitted().get_logs(
            from_block=0, argument_filters={"client": client}
        )
        if logs:
            return {**logs[-1]["args"], "jobHash": "0x" + bytes(logs[-1]["args"]["jobHash"]).hex()}
        time.sleep(0.5)
    raise AssertionError(f"no job of {client} was submitted within {timeout} s")


def test_a_client_killed_mid_answer_pays_exactly_for_what_was_served(
    net: LocalNetwork, model_home: Path, client_model, tmp_path: Path
) -> None:
    market, client = net.chain.market, dev_account(CLIENT)
    market.deposit(client, 5 * WEI_PER_SHARE, net.chain.token)
    escrow = market.escrow_of(client.address)
    home = tmp_path / "client-home"
    home.mkdir()
    (home / "models").symlink_to(model_home / "models")
    answer = subprocess.Popen(
        [*program("sharedllm"), "generate", PROMPT, "--max-tokens", "200",
         "--dev-account", str(CLIENT), "--deployment", str(net.devnet.deployment_path),
         "--rpc-url", net.devnet.rpc_url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "SHAREDLLM_HOME": str(home)},
    )  # fmt: skip
    try:
        last = net.nodes[-1]
        assert last is not None
        deadline = time.monotonic() + 120
        while _sessions_open(last) == 0:  # the answer has begun
            assert answer.poll() is None and time.monotonic() < deadline, "no session opened"
            time.sleep(0.1)
        time.sleep(1.5)  # a dozen tokens or so, of the 200 asked for
        answer.send_signal(signal.SIGKILL)
    finally:
        answer.kill()
        answer.wait(10)
    assert market.escrow_of(client.address) == escrow  # nothing is charged while it is open

    event = _submitted(net, client.address, timeout=IDLE_S + 30)
    tokens, cost = int(event["tokensServed"]), int(event["cost"])
    prompt = len(client_model.prompt_ids(PROMPT))
    assert prompt < tokens < prompt + 150, tokens  # some of the answer, cut off mid-way
    assert cost == tokens * NODE_PRICE * net.manifest.num_layers
    assert market.escrow_of(client.address) == escrow - cost

    window = int(market.params()["challengeWindow"])
    net.devnet.advance_time(window + 1)
    net.wait_for_job(event["jobHash"], "Finalized", timeout=30)
    paid = net.chain.market.contract.events.HopPaid().get_logs(
        from_block=0, argument_filters={"jobHash": bytes.fromhex(event["jobHash"][2:])}
    )
    assert sum(int(e["args"]["amount"]) for e in paid) == cost
    assert len(paid) == len(net.nodes)
