"""Transcripts without processes: the request signature, the byte format, the disk budget and
when a transcript is pruned."""

from __future__ import annotations

import time

import pytest
from eth_utils import to_checksum_address
from transcript_helpers import HIDDEN, JOB_ID, make_transcript

from sharedllm.chain.accounts import dev_account
from sharedllm.errors import ProtocolError, TranscriptAuthError, TranscriptBudget
from sharedllm.node.ledger import CHALLENGED, FINALIZED, REFUSED, SUBMITTED, Ledger
from sharedllm.node.transcript_pruning import ORPHAN_GRACE_S, prune
from sharedllm.node.transcripts import TranscriptStore
from sharedllm.protocol import transcript_format
from sharedllm.protocol.receipts import check_chain
from sharedllm.protocol.transcript_auth import (
    EXPIRES_HEADER,
    MAX_AHEAD_S,
    SIGNATURE_HEADER,
    VERIFIER_HEADER,
    check_request,
    parse_headers,
    request_message,
    sign_request,
)

MARKET = "0x" + "c0de" * 10
NODE = dev_account(2).address
VERIFIER = dev_account(6)


# -- the signed request -------------------------------------------------------------------


def test_request_message_names_purpose_chain_market_node_job_and_expiry() -> None:
    text = request_message(31337, MARKET, NODE.lower(), "0x" + JOB_ID[2:].upper(), 1700000000)
    assert text.splitlines() == [
        "SharedLLM transcript request",
        "chain: 31337",
        f"market: {to_checksum_address(MARKET)}",
        f"node: {NODE}",
        f"job: {JOB_ID}",
        "expires: 1700000000",
    ]
    # Any spelling of the same values signs the same bytes.
    assert text == request_message(
        31337, MARKET.upper().replace("0X", "0x"), NODE, JOB_ID, 1700000000
    )


def _check(headers: dict[str, str], node: str = NODE, now: float | None = None) -> None:
    check_request(
        parse_headers(headers),
        chain_id=31337,
        market=MARKET,
        node=node,
        job_id=JOB_ID,
        now=time.time() if now is None else now,
    )


def test_a_fresh_signed_request_passes_and_names_its_signer() -> None:
    headers = sign_request(VERIFIER, 31337, MARKET, NODE, JOB_ID, int(time.time()) + 60)
    assert headers[VERIFIER_HEADER] == VERIFIER.address
    assert parse_headers(headers).verifier == VERIFIER.address
    _check(headers)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"node": dev_account(3).address}, "SIGNATURE_MISMATCH"),  # signed for another node
        ({"chain_id": 1}, "SIGNATURE_MISMATCH"),
        ({"job_id": "0x" + "cd" * 32}, "SIGNATURE_MISMATCH"),
        ({"expires": -10}, "REQUEST_EXPIRED"),
        ({"expires": MAX_AHEAD_S + 60}, "EXPIRY_TOO_FAR"),
    ],
)
def test_a_request_for_something_else_or_out_of_time_is_refused(change, code) -> None:
    args = {"chain_id": 31337, "node": NODE, "job_id": JOB_ID, "expires": 60} | change
    headers = sign_request(
        VERIFIER,
        args["chain_id"],
        MARKET,
        args["node"],
        args["job_id"],
        int(time.time()) + args["expires"],
    )
    with pytest.raises(TranscriptAuthError) as err:
        _check(headers)
    assert err.value.code == code


def test_a_claimed_address_that_did_not_sign_is_refused() -> None:
    headers = sign_request(dev_account(7), 31337, MARKET, NODE, JOB_ID, int(time.time()) + 60)
    headers[VERIFIER_HEADER] = VERIFIER.address
    with pytest.raises(TranscriptAuthError) as err:
        _check(headers)
    assert err.value.code == "SIGNATURE_MISMATCH"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (VERIFIER_HEADER, "0x1234"),
        (EXPIRES_HEADER, "soon"),
        (EXPIRES_HEADER, "-5"),
        (SIGNATURE_HEADER, "0x" + "00" * 64),
        (SIGNATURE_HEADER, "zz"),
    ],
)
def test_malformed_headers_are_named(header: str, value: str) -> None:
    headers = sign_request(VERIFIER, 31337, MARKET, NODE, JOB_ID, int(time.time()) + 60)
    headers[header] = value
    with pytest.raises(ProtocolError) as err:
        parse_headers(headers)
    assert err.value.details["field"] == header


def test_a_missing_header_is_named() -> None:
    headers = sign_request(VERIFIER, 31337, MARKET, NODE, JOB_ID, int(time.time()) + 60)
    del headers[SIGNATURE_HEADER]
    with pytest.raises(ProtocolError) as err:
        parse_headers(headers)
    assert err.value.code == "AUTH_MISSING"
    assert err.value.details["field"] == SIGNATURE_HEADER


# -- the byte format ----------------------------------------------------------------------


def test_format_round_trip_keeps_steps_bytes_and_receipt_chains() -> None:
    transcript, inputs, outputs = make_transcript()
    again = transcript_format.decode(transcript_format.encode(transcript))
    assert again == transcript
    assert again.step_bytes("inputs") == [x.tobytes() for x in inputs]
    assert again.step_bytes("outputs") == [x.tobytes() for x in outputs]
    assert [(r.step, r.hop) for r in again.own_receipts()] == [(0, 1), (1, 1), (2, 1)]
    check_chain(again.receipts, 2)


@pytest.mark.parametrize(
    ("mangle", "field"),
    [
        (lambda b: b"XXXX" + b[4:], "magic"),
        (lambda b: b[:6], "prefix"),
        (lambda b: b[:-3], "receipts"),
        (lambda b: b[:12] + b[12:40].replace(b'"float32"', b'"float16"') + b[40:], None),
    ],
)
def test_a_mangled_transcript_does_not_parse(mangle, field) -> None:
    body = transcript_format.encode(make_transcript()[0])
    with pytest.raises(ProtocolError) as err:
        transcript_format.decode(mangle(body))
    if field is not None:
        assert err.value.details["field"] == field


def test_receipts_of_another_job_are_refused() -> None:
    ours = make_transcript()[0]
    theirs = make_transcript(job_id="0x" + "cd" * 32)[0]
    mixed = transcript_format.Transcript(**{**ours.__dict__, "receipts": theirs.receipts})
    with pytest.raises(ProtocolError) as err:
        transcript_format.decode(transcript_format.encode(mixed))
    assert err.value.code == "TRANSCRIPT_MALFORMED"


# -- the store on disk --------------------------------------------------------------------


def test_store_writes_atomically_and_reads_back(tmp_path) -> None:
    store = TranscriptStore(tmp_path / "t", 1 << 20, HIDDEN)
    transcript = make_transcript()[0]
    path = store.write(transcript)
    assert path.name == f"{JOB_ID}.sltx"
    assert not list(path.parent.glob("*.tmp"))
    assert transcript_format.decode(store.read(JOB_ID)) == transcript
    assert [j for j, _ in store.job_ids()] == [JOB_ID]
    assert store.discard(JOB_ID) and store.read(JOB_ID) is None


def test_a_session_whose_worst_case_would_overrun_the_budget_is_refused(tmp_path) -> None:
    one = transcript_format.worst_case_bytes(64, HIDDEN, 2)
    store = TranscriptStore(tmp_path / "t", int(one * 1.5), HIDDEN)
    store.reserve("s1", 64, hop=1)
    with pytest.raises(TranscriptBudget) as err:
        store.reserve("s2", 64, hop=1)
    assert err.value.code == "TRANSCRIPT_BUDGET" and err.value.http_status == 429
    store.release("s1")
    store.reserve("s2", 64, hop=1)  # room again once the first session let go


def test_files_on_disk_count_against_the_budget(tmp_path) -> None:
    store = TranscriptStore(tmp_path / "t", 1 << 20, HIDDEN)
    store.write(make_transcript()[0])
    assert store.used_bytes() == store.path(JOB_ID).stat().st_size > HIDDEN * 4 * 14


# -- pruning ------------------------------------------------------------------------------


def _served(ledger: Ledger, job_id: str, deadline: int) -> None:
    ledger.record_served(job_id, {"deadline": deadline}, "0x00", 1, 3, 7, "0x00", [])


def test_settled_and_abandoned_transcripts_are_pruned_the_rest_kept(tmp_path) -> None:
    store = TranscriptStore(tmp_path / "t", 1 << 24, HIDDEN)
    ledger = Ledger(tmp_path / "ledger.db")
    now = time.time()
    ids = {name: "0x" + f"{i:02x}" * 32 for i, name in enumerate(
        ["finalized", "challenged", "refused", "pending", "submitted", "expired", "orphan"], 1
    )}  # fmt: skip
    for name, job_id in ids.items():
        store.write(make_transcript(job_id=job_id)[0])
        if name != "orphan":
            _served(ledger, job_id, int(now) - 3600 if name == "expired" else int(now) + 600)
    ledger.set_status(ids["finalized"], FINALIZED)
    ledger.set_status(ids["challenged"], CHALLENGED)
    ledger.set_status(ids["refused"], REFUSED)
    ledger.set_status(ids["submitted"], SUBMITTED)

    pruned = prune(store, ledger, lambda _: "None", challenge_window=10, now=now)
    assert sorted(pruned) == sorted(
        ids[n] for n in ("finalized", "challenged", "refused", "expired")
    )
    assert ledger.get(ids["expired"]).status == REFUSED
    assert store.read(ids["orphan"]) is not None  # may be a ledger row about to be written
    assert prune(store, ledger, lambda _: "None", 10, now=now + ORPHAN_GRACE_S + 1) == [
        ids["orphan"]
    ]
    assert {j for j, _ in store.job_ids()} == {ids["pending"], ids["submitted"]}


def test_an_expired_job_the_chain_knows_is_not_pruned(tmp_path) -> None:
    store = TranscriptStore(tmp_path / "t", 1 << 24, HIDDEN)
    ledger = Ledger(tmp_path / "ledger.db")
    store.write(make_transcript()[0])
    _served(ledger, JOB_ID, int(time.time()) - 3600)
    assert prune(store, ledger, lambda _: "Submitted", 10) == []
