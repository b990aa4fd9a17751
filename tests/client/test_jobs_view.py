"""``sharedllm jobs`` against a real anvil: the book's jobs, each with its status on-chain."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from juries import draw, stake_verifiers, vote
from registry_net import NODES, Registered, json_server, snapshot, stake_all

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import format_share
from sharedllm.chain.batch_tree import BatchedJob, batch_to_json, build_batch
from sharedllm.chain.court import FAULT
from sharedllm.chain.devnet import Devnet
from sharedllm.cli import sharedllm_main
from sharedllm.client.job_book import JobBook
from sharedllm.protocol.job import Job, sign_job

pytestmark = pytest.mark.chain

ROUTE = NODES[:3]
URLS = [f"http://127.0.0.1:{9100 + i}" for i in range(3)]
COMMITMENT = b"\x42" * 32


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registered]:
    deployment_file = tmp_path_factory.mktemp("jobs") / "deployment.json"
    with Devnet(deployment_path=deployment_file) as devnet:
        endpoints = {spec.account: f"http://127.0.0.1:{9100 + i}" for i, spec in enumerate(NODES)}
        yield stake_all(devnet, deployment_file, endpoints)


@pytest.fixture
def net(registered: Registered, sharedllm_home: Path) -> Iterator[Registered]:
    with snapshot(registered.chain):
        yield registered


def book_job(net: Registered, **changes: object) -> tuple[Job, bytes, str]:
    chain = net.chain
    job = net.job(**changes)
    signature = sign_job(job, net.client, chain.chain_id, chain.market.address)
    job_id = "0x" + chain.market.hash_job(job).hex()
    max_cost = job.max_tokens * sum((s.end - s.start) * s.price for s in ROUTE)
    with JobBook() as book:
        book.record_signed(job_id, job.to_json(), signature, URLS, max_cost)
    return job, signature, job_id


def jobs_json(net: Registered, capsys: pytest.CaptureFixture[str], *extra: str) -> dict:
    code = sharedllm_main(["jobs", *net.cli(), "--json", *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_a_job_goes_signed_served_committed_finalized(
    net: Registered, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = net.chain
    me = ("--dev-account", "4")
    job, signature, job_id = book_job(net)
    (shown,) = jobs_json(net, capsys, *me)["jobs"]
    assert (shown["jobId"], shown["status"], shown["tokens"]) == (job_id, "signed", None)
    assert [h["address"] for h in shown["route"]] == list(job.route)
    assert [h["url"] for h in shown["route"]] == URLS

    tokens = 6
    cost = tokens * sum((s.end - s.start) * s.price for s in ROUTE)
    with JobBook() as book:
        book.record_served(job_id, tokens, cost, "The capital of France is Paris.")
    (shown,) = jobs_json(net, capsys, *me)["jobs"]
    assert (shown["status"], shown["tokens"], int(shown["cost"])) == ("served", tokens, cost)

    last_hop = dev_account(ROUTE[-1].account)
    chain.market.submit_result(last_hop, job, signature, tokens, COMMITMENT)
    (shown,) = jobs_json(net, capsys, *me)["jobs"]
    assert (shown["status"], shown["tokens"], int(shown["cost"])) == ("committed", tokens, cost)
    assert shown["submittedAt"] is not None

    net.devnet.advance_time(chain.deployment.params.challenge_window + 1)
    chain.market.finalize(net.client, job_id)
    (shown,) = jobs_json(net, capsys, *me)["jobs"]
    assert shown["status"] == "finalized"

    code = sharedllm_main(["jobs", *net.cli(), *me])
    out = capsys.readouterr().out
    assert code == 0
    assert "finalized" in out and f"{format_share(cost)} SHARE" in out
    assert f"{URLS[0]} [0:10] -> {URLS[1]} [10:20] -> {URLS[2]} [20:30]" in out
    assert "answer: The capital of France is Paris." in out


def test_a_disputed_job_shows_challenged_under_review_then_upheld(
    net: Registered, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = net.chain
    job, signature, job_id = book_job(net)
    chain.market.submit_result(dev_account(ROUTE[0].account), job, signature, 3, COMMITMENT)
    challenger, *jurors = stake_verifiers(chain, (8, 10, 11, 12))
    bond = chain.deployment.params.min_bond
    chain.court.open_dispute(challenger, job_id, 1, FAULT, b"\x0e" * 32, bond, chain.token)
    (shown,) = jobs_json(net, capsys, "--dev-account", "4")["jobs"]
    assert shown["status"] == "challenged"
    assert shown["dispute"]["phase"] == "drawing" and shown["dispute"]["hop"] == 1

    draw(chain, job_id, challenger)
    (shown,) = jobs_json(net, capsys, "--dev-account", "4")["jobs"]
    assert shown["status"] == "under review" and shown["dispute"]["jurors"] == 3
    assert sharedllm_main(["jobs", *net.cli(), "--dev-account", "4"]) == 0
    out = capsys.readouterr().out
    assert "under review" in out and "hop 1" in out and "3 jurors, 0 committed" in out

    vote(chain, job_id, jurors, uphold=True)
    chain.court.resolve(challenger, job_id)
    (shown,) = jobs_json(net, capsys, "--dev-account", "4")["jobs"]
    assert shown["status"] == "upheld" and shown["dispute"]["upholdVotes"] == 3


def test_an_unsubmitted_job_expires_and_accounts_see_only_their_jobs(
    net: Registered, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, mine = book_job(net, nonce=1)
    deadline = net.chain.w3.eth.get_block("latest")["timestamp"] + 5
    _, _, short = book_job(net, nonce=2, deadline=deadline)
    net.devnet.advance_time(10)
    shown = jobs_json(net, capsys, "--address", net.client.address)["jobs"]
    assert [(j["jobId"], j["status"]) for j in shown] == [(mine, "signed"), (short, "expired")]
    assert (
        jobs_json(net, capsys, "--address", net.client.address, "--limit", "1")["jobs"][0]["jobId"]
        == short
    )
    assert jobs_json(net, capsys, "--dev-account", "7")["jobs"] == []
    assert len(jobs_json(net, capsys)["jobs"]) == 2  # no account: the whole book

    code = sharedllm_main(["jobs", *net.cli(), "--dev-account", "7"])
    assert code == 0 and "no jobs of" in capsys.readouterr().out


def test_jobs_booked_on_another_market_are_not_shown(
    net: Registered, capsys: pytest.CaptureFixture[str]
) -> None:
    job = net.job(nonce=3)
    with JobBook() as book:
        book.record_signed("0x" + "ab" * 32, job, b"\x01" * 65, URLS, 1, market="0x" + "cd" * 20)
    book_job(net, nonce=4)
    assert len(jobs_json(net, capsys)["jobs"]) == 1


def test_a_batched_job_shows_its_batch_committed_then_finalized(
    net: Registered, capsys: pytest.CaptureFixture[str]
) -> None:
    """The market has no record of a batched job: ``sharedllm jobs`` finds its batch from the
    client's ``EntryPosted`` events and the poster's copy of the batch."""
    chain = net.chain
    me = ("--dev-account", "4")
    job, signature, job_id = book_job(net)
    tokens = 5
    prices = tuple(s.price for s in ROUTE)
    batched = BatchedJob(job, bytes.fromhex(job_id[2:]), signature, 0, tokens, COMMITMENT, prices)
    entries = build_batch({job.client: [batched]}, chain.market.params()["rewardPerToken"])
    poster = dev_account(ROUTE[-1].account)
    posted = chain.batches.post(poster, entries)
    body = {"batchId": posted.batch_id, **batch_to_json(entries)}
    with json_server(URLS[-1], {f"/batches/{posted.batch_id}": body}):
        (shown,) = jobs_json(net, capsys, *me)["jobs"]
        assert shown["status"] == "committed" and shown["tokens"] == tokens
        assert shown["batch"] == {"batchId": posted.batch_id, "entry": 0, "status": "committed"}
        assert int(shown["cost"]) == entries[0].debit

        net.devnet.advance_time(chain.deployment.params.challenge_window + 1)
        chain.batches.finalize(net.client, posted.batch_id, posted.payout)
        (shown,) = jobs_json(net, capsys, *me)["jobs"]
        assert shown["status"] == "finalized" and shown["batch"]["status"] == "finalized"
        assert sharedllm_main(["jobs", *net.cli(), *me]) == 0
        assert f"batch: #{posted.batch_id}, entry 0 (finalized)" in capsys.readouterr().out

    # A poster that no longer serves its batch leaves the job as the book knows it.
    (shown,) = jobs_json(net, capsys, *me)["jobs"]
    assert shown["batch"] is None and shown["status"] == "signed"


def test_jobs_wait_shows_what_a_job_waits_for_until_it_settles(
    net: Registered, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = net.chain
    job, signature, job_id = book_job(net)
    chain.market.submit_result(dev_account(ROUTE[-1].account), job, signature, 6, COMMITMENT)
    window = chain.deployment.params.challenge_window
    result: list[int] = []
    waiting = threading.Thread(
        target=lambda: result.append(
            sharedllm_main(["jobs", *net.cli(), "--dev-account", "4", "--wait", "--json"])
        )
    )
    waiting.start()
    try:
        time.sleep(1.5)
        assert not result, "it returned while the job was only committed"
        net.devnet.advance_time(window + 1)
        chain.market.finalize(net.client, job_id)
    finally:
        waiting.join(timeout=60)
    assert result == [0]
    out, err = capsys.readouterr()
    (shown,) = json.loads(out)["jobs"]
    assert shown["status"] == "finalized"
    steps = [line for line in err.splitlines() if line.startswith("jobs settled: ")]
    assert steps[0].startswith("jobs settled: 1 committed (the first challenge window ends in ")
    assert steps[-1] == "jobs settled: 1 finalized"
