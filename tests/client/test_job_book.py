"""The client's job book: what was signed and served survives restarts and retries."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from sharedllm.client.job_book import JobBook, default_path
from sharedllm.errors import ConfigError, ProtocolError
from sharedllm.protocol.job import Job

CLIENT = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"
OTHER = "0x976EA74026E726554dB657fA54763abd0C3a0aa9"
ROUTE = ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"]
URLS = ["http://127.0.0.1:9100", "http://127.0.0.1:9101"]


def job(nonce: int, client: str = CLIENT) -> Job:
    return Job.from_json(
        {
            "modelId": "0x" + "5e" * 32,
            "route": ROUTE,
            "spanStarts": [0, 15],
            "spanEnds": [15, 30],
            "maxTokens": 64,
            "maxPricePerToken": 10**30,  # bigger than SQLite's integers
            "nonce": nonce,
            "deadline": 2**40,
            "client": client,
        }
    )


def job_id(n: int) -> str:
    return "0x" + f"{n:064x}"


def test_the_book_lives_under_sharedllm_home(sharedllm_home: Path) -> None:
    with JobBook() as book:
        book.record_signed(job_id(1), job(1).to_json(), b"\x01" * 65, URLS, 10)
    assert default_path() == sharedllm_home / "client" / "jobs.db"
    assert default_path().is_file()


def test_signed_then_served_round_trips_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    with JobBook(path) as book:
        signed = book.record_signed(job_id(1), job(1).to_json(), b"\xab" * 65, URLS, 3 * 10**30)
        assert signed.status == "signed" and signed.tokens is None
        book.record_signed(job_id(2), job(2), "0x" + "cd" * 65, URLS[:1], 5)
    with JobBook(path) as book:
        first = book.get(job_id(1))
        assert first.job == job(1)
        assert first.signature == "0x" + "ab" * 65
        assert first.route_urls == tuple(URLS)
        assert first.max_cost == 3 * 10**30
        served = book.record_served(job_id(1), 12, 2 * 10**30, "The capital of France is Paris.")
        assert (served.status, served.tokens, served.cost) == ("served", 12, 2 * 10**30)
    with JobBook(path) as book:
        listed = book.list()
        assert [b.job_id for b in listed] == [job_id(1), job_id(2)]
        assert listed[0].text_preview == "The capital of France is Paris."
        assert [b.status for b in listed] == ["served", "signed"]


def test_recording_twice_changes_nothing(tmp_path: Path) -> None:
    with JobBook(tmp_path / "jobs.db") as book:
        first = book.record_signed(job_id(1), job(1).to_json(), b"\x01" * 65, URLS, 10)
        again = book.record_signed(job_id(1), job(1).to_json(), b"\x01" * 65, URLS, 10)
        assert again == first and len(book.list()) == 1
        served = book.record_served(job_id(1), 4, 8, "hi")
        retried = book.record_served(job_id(1), 4, 8, "hi")
        assert retried.served_at == served.served_at
        with pytest.raises(ConfigError) as err:
            book.record_signed(job_id(1), job(1).to_json(), b"\x02" * 65, URLS, 10)
        assert err.value.details["field"] == "job_id"


def test_bad_input_is_refused_naming_the_field(tmp_path: Path) -> None:
    with JobBook(tmp_path / "jobs.db") as book:
        with pytest.raises(ConfigError, match="never recorded"):
            book.record_served(job_id(9), 1, 1)
        with pytest.raises(ProtocolError) as err:
            book.record_signed("0x12", job(1).to_json(), b"\x01", URLS, 1)
        assert err.value.details["field"] == "job_id"
        body = {**job(1).to_json(), "maxTokens": "64"}
        with pytest.raises(ProtocolError) as err:
            book.record_signed(job_id(1), body, b"\x01", URLS, 1)
        assert err.value.details["field"] == "maxTokens"
        with pytest.raises(ProtocolError):
            book.record_signed(job_id(1), job(1).to_json(), b"\x01", ["ftp://x"], 1)
        with pytest.raises(ConfigError):
            book.record_signed(job_id(1), job(1).to_json(), "0xzz", URLS, 1)
        assert book.list() == []


def test_list_by_client_and_concurrent_writers(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    books = [JobBook(path) for _ in range(4)]
    try:

        def write(index: int) -> None:
            for n in range(10):
                client = CLIENT if n % 2 else OTHER
                books[index].record_signed(job_id(n), job(n, client), b"\x01" * 65, URLS, n)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(books[0].list()) == 10
        assert {b.job.client for b in books[1].list(CLIENT)} == {CLIENT}
        assert len(books[2].list(OTHER)) == 5
    finally:
        for book in books:
            book.close()
