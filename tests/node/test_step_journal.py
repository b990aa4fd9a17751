"""A session's steps journalled as served, recovered as a transcript after a crash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from nacl.signing import SigningKey

from sharedllm.node import step_journal
from sharedllm.node.ledger import SERVED, Ledger
from sharedllm.node.step_journal import JournalHeader
from sharedllm.node.transcripts import TranscriptStore
from sharedllm.protocol import transcript_format
from sharedllm.protocol.receipts import Receipt, job_commitment, tensor_hash

JOB = "0x" + "cd" * 32
HIDDEN = 8
LENGTHS = [5, 1, 1]
HEADER = JournalHeader({"maxTokens": 64, "route": ["0x1", "0x2"]}, "0x" + "11" * 65, 1, 2, HIDDEN)


def _steps() -> list[tuple[int, int, bytes, bytes, list[Receipt]]]:
    rng = np.random.default_rng(3)
    keys = [SigningKey(bytes([k]) * 32) for k in (1, 2)]
    out, start = [], 0
    for step, n in enumerate(LENGTHS):
        x = rng.standard_normal((n, HIDDEN)).astype("<f4").tobytes()
        y = rng.standard_normal((n, HIDDEN)).astype("<f4").tobytes()
        chain = [
            Receipt(
                bytes.fromhex(JOB[2:]), hop, step, start, n, tensor_hash(x), tensor_hash(y)
            ).signed(keys[hop])
            for hop in (0, 1)
        ]
        out.append((start, n, x, y, chain))
        start += n
    return out


def _journal(store: TranscriptStore, steps) -> None:
    for step, (start, n, x, y, chain) in enumerate(steps):
        step_journal.append_step(store, JOB, HEADER, step, start, n, x, y, chain)


def test_a_crash_mid_answer_leaves_a_transcript_of_the_steps_served(tmp_path: Path) -> None:
    store = TranscriptStore(tmp_path / "t", 1 << 30, HIDDEN)
    ledger = Ledger(tmp_path / "ledger.db")
    steps = _steps()
    _journal(store, steps)
    path = step_journal.journal_path(store, JOB)
    path.write_bytes(path.read_bytes()[:-10])  # the crash cut the last step's record short

    assert step_journal.recover(store, ledger) == [JOB]

    t = transcript_format.decode(store.read(JOB))
    assert t.hop == 1 and t.steps == (5, 1)  # the whole steps, not the torn one
    assert t.inputs == steps[0][2] + steps[1][2] and t.outputs == steps[0][3] + steps[1][3]
    receipts = [r for s in steps[:2] for r in s[4]]
    assert list(t.receipts) == receipts
    row = ledger.get(JOB)
    assert row is not None and row.status == SERVED and row.tokens == 6 and row.recovered
    assert row.commitment == "0x" + job_commitment(receipts).hex()
    assert row.job == HEADER.job and row.signature == HEADER.signature
    assert not path.exists()


def test_a_recovered_last_hop_never_submits(tmp_path: Path) -> None:
    """It cannot know which of its steps reached the client: a survivor submits instead."""
    store = TranscriptStore(tmp_path / "t", 1 << 30, HIDDEN)
    ledger = Ledger(tmp_path / "ledger.db")
    _journal(store, _steps())  # hop 1 of 2: the last hop
    step_journal.recover(store, ledger)
    row = ledger.get(JOB)
    assert row is not None and row.hop == row.hops - 1 and not row.submits


def test_a_job_closed_normally_is_not_recovered_twice(tmp_path: Path) -> None:
    store = TranscriptStore(tmp_path / "t", 1 << 30, HIDDEN)
    ledger = Ledger(tmp_path / "ledger.db")
    _journal(store, _steps())
    step_journal.recover(store, ledger)
    _journal(store, _steps())  # a stale journal of a job the ledger already has
    assert step_journal.recover(store, ledger) == []
    assert not step_journal.journal_path(store, JOB).exists()
    assert ledger.get(JOB).tokens == 7


def test_a_journal_with_a_gap_keeps_the_steps_before_it(tmp_path: Path) -> None:
    store = TranscriptStore(tmp_path / "t", 1 << 30, HIDDEN)
    ledger = Ledger(tmp_path / "ledger.db")
    steps = _steps()
    for step in (0, 2):  # step 1 never written
        start, n, x, y, chain = steps[step]
        step_journal.append_step(store, JOB, HEADER, step, start, n, x, y, chain)
    step_journal.recover(store, ledger)
    assert transcript_format.decode(store.read(JOB)).steps == (5,)


def test_an_unreadable_journal_is_left_alone(tmp_path: Path) -> None:
    store = TranscriptStore(tmp_path / "t", 1 << 30, HIDDEN)
    ledger = Ledger(tmp_path / "ledger.db")
    path = step_journal.journal_path(store, JOB)
    path.write_bytes(b"not a journal")
    assert step_journal.recover(store, ledger) == []
    assert path.exists() and ledger.get(JOB) is None
