"""The verifier's batch audit against a real anvil, with a poster played by hand: a forged
leaf, a job paid twice, a job submitted again after its batch, a hidden batch. No model:
the bookkeeping check needs none."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.batch_tree import BatchedJob, batch_to_json, build_batch
from sharedllm.chain.batches import FAULTS
from sharedllm.chain.devnet import Devnet
from sharedllm.chain.registry import NodeConfig
from sharedllm.protocol.job import Job, job_digest, sign_job
from sharedllm.verifier.batch_audit import BatchDesk
from sharedllm.verifier.events import ChainEvents
from sharedllm.verifier.ledger import BATCH_AUDITED, VerifierLedger
from sharedllm.verifier.selection import SelectionPolicy

pytestmark = pytest.mark.chain

MODEL_ID = "0x" + "5e" * 32
PRICE = 10**12
SPANS = ((0, 10), (10, 20), (20, 30))
POSTER, CLIENT, VERIFIER = 3, 4, 9


class _Batches(BaseHTTPRequestHandler):
    bodies: dict[str, bytes] = {}

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        body = self.bodies.get(self.path, b"")
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def devnet() -> Iterator[Devnet]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Batches)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with Devnet() as net:
            chain = net.chain()
            for i, (start, end) in enumerate(SPANS):
                url = f"http://127.0.0.1:{server.server_port}"
                cfg = NodeConfig(url, "0x" + "03" * 32, MODEL_ID, start, end, PRICE)
                chain.registry.stake(dev_account(1 + i), 200 * WEI_PER_SHARE, cfg, chain.token)
            chain.market.deposit(dev_account(CLIENT), 10 * WEI_PER_SHARE, chain.token)
            yield net
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def desk(devnet: Devnet, tmp_path: Path) -> BatchDesk:
    chain = devnet.chain()
    events = ChainEvents(chain)
    ledger = VerifierLedger(tmp_path / "ledger.db")
    lines: list[str] = []
    desk = BatchDesk(chain, dev_account(VERIFIER), ledger, SelectionPolicy(1.0), lines.append,
                     events.block_hash, events.chain_time)  # fmt: skip
    desk.lines = lines  # type: ignore[attr-defined]
    desk.events = events  # type: ignore[attr-defined]
    return desk


def _job(devnet: Devnet, signer=None) -> BatchedJob:
    chain = devnet.chain()
    client = dev_account(CLIENT)
    job = Job.from_json({
        "modelId": MODEL_ID, "route": [dev_account(1 + i).address for i in range(3)],
        "spanStarts": [s for s, _ in SPANS], "spanEnds": [e for _, e in SPANS],
        "maxTokens": 32, "maxPricePerToken": PRICE, "nonce": time.time_ns(),
        "deadline": chain.now() + 3600, "client": client.address,
    })  # fmt: skip
    digest = job_digest(job, chain.chain_id, chain.market.address)
    if signer is None:
        signature = sign_job(job, client, chain.chain_id, chain.market.address)
    else:
        signature = bytes(signer.unsafe_sign_hash(digest).signature)
    return BatchedJob(job, digest, signature, 0, 7, b"\x01" * 32, (PRICE,) * 3)


def _post(devnet: Devnet, jobs: list[BatchedJob], serve: bool = True):
    chain = devnet.chain()
    entries = build_batch({jobs[0].job.client: jobs}, chain.market.params()["rewardPerToken"])
    if serve:
        path = f"/batches/{chain.batches.batch_count() + 1}"
        _Batches.bodies[path] = json.dumps(batch_to_json(entries)).encode()
    return entries, chain.batches.post(dev_account(POSTER), entries)


def _audit(desk: BatchDesk) -> None:
    """One pass of what the verifier does: read new batches and work through them."""
    events: ChainEvents = desk.events  # type: ignore[attr-defined]
    desk.chain.w3.provider.make_request("evm_mine", [])  # the batch's random block
    cursor = desk.ledger.cursor(desk.chain.deployment.deploy_block)
    last = events.head() - 1
    desk.ledger.record_seen([], last + 1, batches=events.batches(cursor, last))
    asyncio.run(desk.work())


def _voided(devnet: Devnet, batch_id: int) -> list[dict]:
    logs = (
        devnet.chain()
        .batches.contract.events.EntryVoided()
        .get_logs(from_block=0, argument_filters={"batchId": batch_id})
    )
    return [dict(e["args"]) for e in logs]


def test_a_sound_batch_is_audited_and_drawn_from(devnet: Devnet, desk: BatchDesk) -> None:
    _, posted = _post(devnet, [_job(devnet), _job(devnet)])
    _audit(desk)
    assert desk.ledger.batch(posted.batch_id)["status"] == BATCH_AUDITED
    assert f"batch {posted.batch_id} audited jobs=2 selected=2" in desk.lines
    assert _voided(devnet, posted.batch_id) == []
    assert all(j.batch_id == posted.batch_id for j in desk.ledger.all())


def test_a_forged_leaf_is_proven_and_its_client_refunded(devnet: Devnet, desk: BatchDesk) -> None:
    chain = devnet.chain()
    escrow = chain.market.escrow_of(dev_account(CLIENT).address)
    forged = _job(devnet, signer=dev_account(18))
    _, posted = _post(devnet, [_job(devnet), forged])
    _audit(desk)
    (voided,) = _voided(devnet, posted.batch_id)
    assert voided["fault"] == FAULTS.index("BadSignature")
    assert chain.market.escrow_of(dev_account(CLIENT).address) == escrow
    assert f"batch {posted.batch_id} entry 0 voided reason=BadSignature" in desk.lines


def test_a_job_posted_again_is_proven_in_its_later_batch(devnet: Devnet, desk: BatchDesk) -> None:
    job = _job(devnet)
    _, first = _post(devnet, [job])
    _audit(desk)
    _, second = _post(devnet, [job])
    _audit(desk)
    assert _voided(devnet, first.batch_id) == []
    (voided,) = _voided(devnet, second.batch_id)
    assert voided["fault"] == FAULTS.index("Replayed")


def test_a_job_submitted_again_after_its_batch_is_overturned(
    devnet: Devnet, desk: BatchDesk
) -> None:
    chain = devnet.chain()
    job = _job(devnet)
    _, posted = _post(devnet, [job])
    _audit(desk)
    escrow = chain.market.escrow_of(dev_account(CLIENT).address)
    devnet.advance_time(1)  # submitted after the batch, not in the same second
    chain.market.submit_result(dev_account(1), job.job, job.signature, 7, b"\x02" * 32)
    desk.note_submitted(["0x" + job.job_hash.hex()])
    asyncio.run(desk.work())
    assert chain.market.get_job("0x" + job.job_hash.hex()).status == "Challenged"
    assert chain.market.escrow_of(dev_account(CLIENT).address) == escrow
    assert any("resubmitted: overturned" in line for line in desk.lines)
    assert _voided(devnet, posted.batch_id) == [], "the batch that paid first stands"


def test_a_hidden_batch_is_demanded_then_forfeited(devnet: Devnet, desk: BatchDesk) -> None:
    chain = devnet.chain()
    escrow = chain.market.escrow_of(dev_account(CLIENT).address)
    _, posted = _post(devnet, [_job(devnet)], serve=False)
    _audit(desk)
    assert any(line.startswith(f"batch {posted.batch_id} unreadable") for line in desk.lines)
    assert chain.batches.get_batch(posted.batch_id).open_demands == 1
    asyncio.run(desk.work())  # not due yet: nothing happens
    assert _voided(devnet, posted.batch_id) == []
    devnet.advance_time(chain.deployment.params.batch_response_window + 1)
    asyncio.run(desk.work())
    (voided,) = _voided(devnet, posted.batch_id)
    assert voided["fault"] == FAULTS.index("Withheld")
    assert chain.market.escrow_of(dev_account(CLIENT).address) == escrow
