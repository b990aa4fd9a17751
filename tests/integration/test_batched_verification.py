"""Verification of batched jobs against a real network: real anvil, five real paid nodes
posting batches, four real verifier processes, the real model.

The cast is the one of ``test_verifier``: layers 10:20 are served by a cheater (skips a
layer on every step) and by an honest node, 20:30 by an honest node and by an over-charger
(bills every job for its ``maxTokens``). Every node settles in batches. One verifier checks
every job; three more sit on juries. A sixth account is a poster that runs no node at all:
the test posts its batches by hand, to play the bookkeeping cheats no honest node software
would, and serves (or withholds) their jobs from a plain HTTP server.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import threading
import time
from collections.abc import Iterator

import pytest
from net_helpers import assert_every_token_in_one_place

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.batch_tree import BatchedJob, batch_to_json, build_batch
from sharedllm.chain.batches import FAULTS
from sharedllm.chain.devnet import DEVNET_PARAMS
from sharedllm.chain.registry import NodeConfig
from sharedllm.client.planner import RoutePolicy
from sharedllm.localnet import LocalNetwork
from sharedllm.node.ledger import CHALLENGED, FINALIZED, Ledger
from sharedllm.protocol.job import Job, job_digest, sign_job

# The slow tier (about 3 minutes): the bookkeeping half runs in the default tier without
# nodes, in tests/verifier/test_batch_audit.py.
pytestmark = [pytest.mark.chain, pytest.mark.model, pytest.mark.nodes, pytest.mark.slow]

PROMPT = "What is the capital of France?"
TOKENS = 6
SPANS = [(0, 10), (10, 20), (20, 30), (10, 20), (20, 30)]
FIRST, CHEATER, LAST, HONEST, OVERCHARGER = range(5)
JURORS = (10, 11, 12)
POSTER = 17  # a dev account staked as a node with no node process: the test posts for it
# A window long enough for a batch to be posted, read, drawn from and recomputed in it.
PARAMS = dataclasses.replace(
    DEVNET_PARAMS, challenge_window=30, response_window=20, commit_window=30, unbonding_delay=800
)
BATCHING = ("--threads", "1", "--batch-size", "2", "--batch-age", "4")
SETTLE_S = 150


@pytest.fixture(scope="module")
def net(model_home):
    with LocalNetwork(
        SPANS,
        node_accounts=(1, 2, 3, 5, 13),
        node_args=BATCHING,
        node_faults={CHEATER: ("--cheat", "skip_layer"), OVERCHARGER: ("--overcharge",)},
        params=PARAMS,
        verifier_probability=1.0,
        jurors=JURORS,
        node_stake=400 * WEI_PER_SHARE,
    ) as network:
        yield network


def _via(net: LocalNetwork, *nodes: int) -> RoutePolicy:
    return RoutePolicy(trusted={net.nodes[i].url for i in nodes})


def _wait(what: str, check, timeout: float = SETTLE_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _anyone_said(net: LocalNetwork, prefix: str) -> str:
    """The first line starting with ``prefix`` from any verifier process."""
    everyone = [net.verifier, *net.jurors]
    return _wait(
        prefix,
        lambda: next((ln for v in everyone for ln in list(v.lines) if ln.startswith(prefix)), None),
    )


def _voided(net: LocalNetwork, batch_id: int) -> list[dict]:
    events = net.chain.batches.contract.events.EntryVoided().get_logs(
        from_block=0, argument_filters={"batchId": batch_id}
    )
    return [dict(e["args"]) for e in events]


def test_a_cheated_job_leaves_its_batch_and_the_rest_of_the_batch_is_paid(
    net: LocalNetwork,
) -> None:
    chain, verifier = net.chain, net.verifier
    client = dev_account(4)
    chain.market.deposit(client, 5 * WEI_PER_SHARE, chain.token)
    escrow = chain.market.escrow_of(client.address)
    cheater_stake = chain.registry.get_node(net.accounts[CHEATER].address).stake

    _, cheated = net.generate(PROMPT, client, TOKENS, policy=_via(net, FIRST, CHEATER, LAST))
    text, honest = net.generate(PROMPT, client, TOKENS, policy=_via(net, FIRST, HONEST, LAST))
    assert "Paris" in text
    bad, good = cheated[-1].signed.job_id, honest[-1].signed.job_id
    poster = Ledger(net.ledger_path(LAST))
    row = _wait("the batch to be posted", lambda: (r := poster.get(good)) and r.batch_id and r)

    assert verifier.said("batch", str(row.batch_id), SETTLE_S) == "audited jobs=2 selected=2"
    assert verifier.verdict(bad, SETTLE_S).startswith("challenged hop=1 reason=output")
    assert verifier.verdict(good, SETTLE_S) == "passed"
    assert verifier.said("dispute", bad, SETTLE_S).startswith("upheld hop=1 votes=3/3")

    # The cheated job was lifted, judged and refunded; the honest one paid with its batch.
    assert chain.market.get_job(bad).status == "Challenged"
    assert chain.market.get_job(good).status == "None"
    row = _wait(
        "the honest job to be paid", lambda: (r := poster.get(good)).status == FINALIZED and r
    )
    batch = chain.batches.get_batch(row.batch_id)
    assert batch.status == "Finalized" and batch.lifted
    assert _wait("the lifted job to be recorded", lambda: poster.get(bad).status == CHALLENGED)
    cost = (
        honest[-1].tokens
        * 30
        * chain.registry.get_node(net.accounts[FIRST].address).price_per_token
    )
    assert chain.market.escrow_of(client.address) == escrow - cost
    assert chain.registry.get_node(net.accounts[CHEATER].address).stake == (
        cheater_stake - chain.market.params()["slashAmount"]
    )
    assert_every_token_in_one_place(net)


def test_an_overcharging_poster_is_proven_from_its_batch(net: LocalNetwork) -> None:
    chain, verifier = net.chain, net.verifier
    client = dev_account(8)
    chain.market.deposit(client, 2 * WEI_PER_SHARE, chain.token)
    escrow = chain.market.escrow_of(client.address)
    route = _via(net, FIRST, HONEST, OVERCHARGER)
    jobs = [net.generate(PROMPT, client, TOKENS, policy=route)[1][-1] for _ in range(2)]
    for job in jobs:
        verdict = verifier.verdict(job.signed.job_id, SETTLE_S)
        assert verdict.startswith("overcharge hop=2 proven"), verdict
        assert chain.market.get_job(job.signed.job_id).status == "Challenged"
    assert chain.market.escrow_of(client.address) == escrow, "both jobs refunded in full"
    assert_every_token_in_one_place(net)


# -- bookkeeping cheats, played by hand -------------------------------------------------------


class _Serve(http.server.BaseHTTPRequestHandler):
    bodies: dict[str, bytes] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = self.bodies.get(self.path)
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body or b'{"code": "BATCH_UNKNOWN", "message": "none"}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def rogue(net: LocalNetwork) -> Iterator[tuple]:
    """The hand-played poster: staked over 20:30, its endpoint a plain HTTP server."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Serve)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    account = dev_account(POSTER)
    chain = net.chain
    cfg = NodeConfig(
        f"http://127.0.0.1:{server.server_port}", "0x" + "77" * 32, net.manifest.model_id,
        20, 30, chain.registry.get_node(net.accounts[LAST].address).price_per_token,
    )  # fmt: skip
    chain.registry.stake(account, 200 * WEI_PER_SHARE, cfg, chain.token)
    try:
        yield account, _Serve.bodies
    finally:
        server.shutdown()


def _forged(net: LocalNetwork, client, signer, poster) -> BatchedJob:
    chain = net.chain
    nodes = [net.accounts[FIRST].address, net.accounts[HONEST].address, poster.address]
    job = Job.from_json({
        "modelId": net.manifest.model_id, "route": nodes, "spanStarts": [0, 10, 20],
        "spanEnds": [10, 20, 30], "maxTokens": 32, "maxPricePerToken": 10**13,
        "nonce": time.time_ns(), "deadline": chain.now() + 300, "client": client.address,
    })  # fmt: skip
    price = chain.registry.get_node(nodes[0]).price_per_token
    digest = job_digest(job, chain.chain_id, chain.market.address)
    signature = (
        sign_job(job, signer, chain.chain_id, chain.market.address)
        if signer is client
        else (signer.unsafe_sign_hash(digest).signature)
    )
    return BatchedJob(job, digest, bytes(signature), 0, 20, b"\x01" * 32, (price,) * 3)


def test_a_forged_job_in_a_served_batch_is_proven_and_refunded(net: LocalNetwork, rogue) -> None:
    chain = net.chain
    poster, bodies = rogue
    client = dev_account(9)
    chain.market.deposit(client, 1 * WEI_PER_SHARE, chain.token)
    escrow = chain.market.escrow_of(client.address)
    stake = chain.registry.get_node(poster.address).stake
    forged = _forged(net, client, dev_account(18), poster)  # signed by someone else
    entries = build_batch({client.address: [forged]}, chain.market.params()["rewardPerToken"])
    bodies[f"/batches/{chain.batches.batch_count() + 1}"] = json.dumps(
        batch_to_json(entries)
    ).encode()
    posted = chain.batches.post(poster, entries)
    assert chain.market.escrow_of(client.address) == escrow - entries[0].debit

    # Every verifier reads every batch; whichever is first proves it.
    line = _anyone_said(net, f"batch {posted.batch_id} entry 0 voided")
    assert line.endswith("reason=BadSignature"), line
    (voided,) = _voided(net, posted.batch_id)
    assert voided["fault"] == FAULTS.index("BadSignature") and voided["refund"] == entries[0].debit
    assert chain.market.escrow_of(client.address) == escrow, "refunded in full"
    assert (
        chain.registry.get_node(poster.address).stake
        == stake - chain.market.params()["slashAmount"]
    )
    assert_every_token_in_one_place(net)


def test_a_batch_its_poster_will_not_show_is_forfeited(net: LocalNetwork, rogue) -> None:
    chain = net.chain
    poster, _ = rogue  # serves nothing for this batch
    client = dev_account(7)
    chain.market.deposit(client, 1 * WEI_PER_SHARE, chain.token)
    escrow = chain.market.escrow_of(client.address)
    job = _forged(net, client, client, poster)  # a sound job: the poster just hides it
    entries = build_batch({client.address: [job]}, chain.market.params()["rewardPerToken"])
    posted = chain.batches.post(poster, entries)
    assert _anyone_said(net, f"batch {posted.batch_id} unreadable")
    line = _anyone_said(net, f"batch {posted.batch_id} entry 0 voided")
    assert line.endswith("reason=Withheld"), line
    (voided,) = _voided(net, posted.batch_id)
    assert voided["fault"] == FAULTS.index("Withheld")
    assert chain.market.escrow_of(client.address) == escrow
    assert_every_token_in_one_place(net)
