import pytest

from sharedllm.node.ledger import FINALIZED, SERVED, SUBMITTED, Ledger

JOB = {"modelId": "0x" + "11" * 32, "nonce": 1}


def test_served_job_survives_reopen_and_is_recorded_once(tmp_path):
    path = tmp_path / "ledger.db"
    ledger = Ledger(path)
    receipts = [(0, 2, "aa"), (1, 2, "bb")]
    ledger.record_served("0x01", JOB, "0xsig", 2, 3, 12, "0xc0", receipts)
    ledger.record_served("0x01", JOB, "0xother", 2, 3, 99, "0xc1", [])
    ledger.close()

    reopened = Ledger(path)
    job = reopened.get("0x01")
    assert job is not None
    assert (job.status, job.tokens, job.signature, job.job) == (SERVED, 12, "0xsig", JOB)
    assert reopened.receipts("0x01") == ["aa", "bb"]
    assert [j.job_id for j in reopened.with_status(SERVED)] == ["0x01"]


def test_status_moves_and_amounts_round_trip(tmp_path):
    ledger = Ledger(tmp_path / "ledger.db")
    ledger.record_served("0x02", JOB, "0xsig", 0, 1, 5, "0xc0", [])
    ledger.set_status("0x02", SUBMITTED, submit_tx="0xtx")
    assert list(ledger.with_status(SERVED)) == []
    ledger.set_status("0x02", FINALIZED, payout=10**30, reward=7)
    job = ledger.get("0x02")
    assert (job.status, job.submit_tx, job.payout, job.reward) == (FINALIZED, "0xtx", 10**30, 7)
    with pytest.raises(ValueError):
        ledger.set_status("0x02", "paid")
