"""The verifier's ledger across restarts: no job skipped, none drawn twice, every verdict kept."""

from __future__ import annotations

from pathlib import Path

from sharedllm.verifier.ledger import (
    CHALLENGED,
    CHECKING,
    OPEN,
    PASSED,
    SELECTED,
    SKIPPED,
    Evidence,
    SeenJob,
    VerifierLedger,
)


def _seen(i: int, selected: bool = True, random: str | None = None) -> SeenJob:
    return SeenJob(
        job_id="0x" + f"{i:064x}",
        block=10 + i,
        submitter="0x" + "11" * 20,
        commitment="0x" + "22" * 32,
        random=random or "0x" + f"{i:064x}",
        selected=selected,
    )


def test_the_cursor_and_the_jobs_below_it_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = VerifierLedger(path)
    assert ledger.cursor(default=5) == 5
    ledger.record_seen([_seen(1), _seen(2, selected=False)], next_block=13)
    ledger.close()

    again = VerifierLedger(path)
    assert again.cursor(default=5) == 13
    statuses = {j.job_id: j.status for j in again.all()}
    assert statuses == {_seen(1).job_id: SELECTED, _seen(2).job_id: SKIPPED}


def test_a_job_seen_twice_keeps_its_first_draw_and_status(tmp_path: Path) -> None:
    ledger = VerifierLedger(tmp_path / "ledger.db")
    ledger.record_seen([_seen(1)], next_block=12)
    ledger.set_status(_seen(1).job_id, PASSED)
    ledger.record_seen([_seen(1, selected=False, random="0x" + "ff" * 32)], next_block=12)
    job = ledger.get(_seen(1).job_id)
    assert job.status == PASSED and job.selected and job.random == _seen(1).random


def test_jobs_left_checking_by_a_crash_are_open_again_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = VerifierLedger(path)
    ledger.record_seen([_seen(1), _seen(2), _seen(3), _seen(4, selected=False)], next_block=20)
    ledger.set_status(_seen(1).job_id, CHECKING)
    ledger.set_status(_seen(2).job_id, PASSED)
    ledger.close()  # the process dies here, mid-check of job 1

    again = VerifierLedger(path)
    open_jobs = [(j.job_id, j.status) for j in again.with_status(*OPEN)]
    assert open_jobs == [(_seen(1).job_id, CHECKING), (_seen(3).job_id, SELECTED)]


def test_a_challenge_is_kept_with_its_evidence(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = VerifierLedger(path)
    job = _seen(1)
    ledger.record_seen([job], next_block=12)
    evidence = Evidence(job.job_id, 1, "output", step=3, position=0, score=0.66, detail="x")
    digest = ledger.record_evidence(evidence)
    ledger.record_challenge(job.job_id, 1, digest, "0x" + "33" * 32, 14)
    ledger.record_check(job.job_id, 1, False, "output", step=3, position=0, score=0.66)
    ledger.close()

    again = VerifierLedger(path)
    row = again.get(job.job_id)
    assert (row.status, row.hop, row.evidence, row.challenge_tx) == (
        CHALLENGED, 1, digest, "0x" + "33" * 32,
    )  # fmt: skip
    assert again.evidence(digest) == evidence.record()
    assert [c["job_id"] for c in again.challenges()] == [job.job_id]
    assert again.checks(job.job_id)[0]["reason"] == "output"


def test_the_evidence_hash_is_32_bytes_and_names_what_it_rests_on() -> None:
    a = Evidence("0x" + "00" * 32, 1, "output", 3, 0, 0.66)
    b = Evidence("0x" + "00" * 32, 1, "output", 3, 1, 0.66)
    assert len(a.digest()) == 32
    assert a.digest() == Evidence("0x" + "00" * 32, 1, "output", 3, 0, 0.66).digest()
    assert a.digest() != b.digest()
    # A transcript that never came has no score; inf (a NaN output) must still hash.
    assert len(Evidence("0x" + "00" * 32, 0, "output", 0, 0, float("inf")).digest()) == 32
