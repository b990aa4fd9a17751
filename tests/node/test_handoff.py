"""A surviving hop takes over a job whose last hop died, only with receipts it can trust."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from nacl.signing import SigningKey

from sharedllm.errors import SharedLLMError
from sharedllm.node.handlers import error_middleware
from sharedllm.node.handoff import ReceiptHandoff, add_handoff_routes
from sharedllm.node.ledger import SERVED, Ledger
from sharedllm.protocol.receipt_handoff import handoff_body, parse_handoff
from sharedllm.protocol.receipts import Receipt, job_commitment, tensor_hash

JOB = "0x" + "ab" * 32
ROUTE = ["0x" + f"{i:040x}" for i in (1, 2, 3)]
HIDDEN = 16
LENGTHS = [4, 1, 1]  # the client got answers for steps 0 and 1; step 2 died at the last hop
ME = 1  # this node is hop 1 of 3


def _chains(keys: list[SigningKey]) -> list[list[Receipt]]:
    rng = np.random.default_rng(7)
    chains, start = [], 0
    for step, length in enumerate(LENGTHS):
        data = rng.standard_normal((1, length, HIDDEN)).astype(np.float32).tobytes()
        chain = []
        for hop, key in enumerate(keys):
            out = rng.standard_normal((1, length, HIDDEN)).astype(np.float32)
            chain.append(
                Receipt(
                    bytes.fromhex(JOB[2:]),
                    hop,
                    step,
                    start,
                    length,
                    tensor_hash(data),
                    tensor_hash(out.tobytes()),
                ).signed(key)
            )
            data = out.tobytes()
        chains.append(chain)
        start += length
    return chains


@pytest.fixture
def setup(tmp_path: Path):
    keys = [SigningKey.generate() for _ in ROUTE]
    chains = _chains(keys)
    ledger = Ledger(tmp_path / "ledger.db")
    held = [r for chain in chains for r in chain[: ME + 1]]
    ledger.record_served(
        JOB,
        {"route": ROUTE},
        "0x00",
        ME,
        len(ROUTE),
        sum(LENGTHS),
        "0x" + job_commitment(held).hex(),
        [(r.step, r.hop, r.to_hex()) for r in held],
    )
    pokes: list[int] = []
    handoff = ReceiptHandoff(
        ledger, lambda route: [bytes(k.verify_key) for k in keys], lambda: pokes.append(1)
    )
    # What the client kept: full chains for the steps it got answers for.
    client = {s: [r.to_hex() for r in chains[s]] for s in (0, 1)}
    client[2] = [r.to_hex() for r in chains[2][: ME + 1]]
    yield handoff, ledger, chains, client, pokes
    ledger.close()


def test_takes_over_the_complete_steps(setup) -> None:
    handoff, ledger, chains, client, pokes = setup
    taken = handoff.accept(JOB, parse_handoff(handoff_body(client)))

    full = chains[0] + chains[1]
    assert (taken.steps, taken.tokens) == (2, LENGTHS[0] + LENGTHS[1])
    entry = ledger.get(JOB)
    assert entry.status == SERVED and entry.submits and entry.tokens == 5
    assert entry.commitment == "0x" + job_commitment(full).hex() == taken.commitment
    assert ledger.receipts(JOB) == [r.to_hex() for r in full]
    assert pokes == [1]
    with pytest.raises(SharedLLMError) as again:
        handoff.accept(JOB, parse_handoff(handoff_body(client)))
    assert again.value.code == "JobAlreadySubmitted"


def test_refuses_a_changed_own_receipt_over_http(setup) -> None:
    handoff, ledger, _, client, pokes = setup
    mine = bytearray.fromhex(client[0][ME])
    mine[40] ^= 1  # one byte of this hop's receipt for step 0
    client[0][ME] = mine.hex()
    before = ledger.get(JOB)

    status, body = asyncio.run(_post(handoff, handoff_body(client)))

    assert status == 400 and body["code"] == "RECEIPT_DIFFERS"
    assert body["details"] == {"step": 0, "hop": ME}
    assert ledger.get(JOB) == before and not before.submits and pokes == []


def test_refuses_a_last_hop_receipt_signed_by_another_key(setup) -> None:
    handoff, ledger, chains, client, _ = setup
    forged = Receipt(**{**chains[0][2].__dict__, "signature": b""}).signed(SigningKey.generate())
    client[0][2] = forged.to_hex()
    with pytest.raises(SharedLLMError) as refused:
        handoff.accept(JOB, parse_handoff(handoff_body(client)))
    assert refused.value.code == "RECEIPT_BAD_SIGNATURE"
    assert not ledger.get(JOB).submits


def test_refuses_an_unknown_job(setup) -> None:
    handoff, _, _, client, _ = setup
    status, body = asyncio.run(_post(handoff, handoff_body(client), "0x" + "cd" * 32))
    assert status == 404 and body["code"] == "JOB_UNKNOWN"


async def _post(handoff: ReceiptHandoff, body: dict, job: str = JOB) -> tuple[int, dict]:
    app = web.Application(middlewares=[error_middleware])
    add_handoff_routes(app, handoff)
    async with TestClient(TestServer(app)) as http:
        response = await http.post(f"/jobs/{job}/receipts", json=body)
        return response.status, await response.json()


def test_a_taken_over_job_is_still_ours_after_a_restart(setup, tmp_path: Path) -> None:
    handoff, ledger, _, client, _ = setup
    handoff.accept(JOB, parse_handoff(handoff_body(client)))
    reopened = Ledger(tmp_path / "ledger.db")
    try:
        entry = reopened.get(JOB)
        assert entry.submits and entry.tokens == LENGTHS[0] + LENGTHS[1]
        assert [j.job_id for j in reopened.with_status(SERVED) if j.submits] == [JOB]
    finally:
        reopened.close()


def test_a_ledger_from_before_handoffs_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    Ledger(path).close()
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE jobs DROP COLUMN handed_over")
    ledger = Ledger(path)
    try:
        ledger.record_served(JOB, {"route": ROUTE}, "0x00", ME, 3, 1, "0x00", [])
        assert not ledger.get(JOB).submits
        assert ledger.take_over(JOB, 1, "0x01", [])
        assert ledger.get(JOB).submits
    finally:
        ledger.close()
