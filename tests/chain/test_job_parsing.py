"""The signed job's wire format: strict parsing, and signatures that bind every field."""

from __future__ import annotations

import pytest
from eth_account import Account

from sharedllm.errors import JobRejected, ProtocolError
from sharedllm.protocol.job import Job, job_digest, recover_job_signer, sign_job

CLIENT = Account.from_key(b"\x01" * 32)
NODE_A = "0x" + "aa" * 20
NODE_B = "0x" + "bb" * 20
MARKET = "0x" + "cc" * 20


def body(**changes: object) -> dict:
    base = {
        "modelId": "0x" + "11" * 32,
        "route": [NODE_A, NODE_B],
        "spanStarts": [0, 15],
        "spanEnds": [15, 30],
        "maxTokens": 64,
        "maxPricePerToken": 10**12,
        "nonce": 7,
        "deadline": 1_900_000_000,
        "client": CLIENT.address,
    }
    base.update(changes)
    return base


def test_round_trip_keeps_every_field() -> None:
    job = Job.from_json(body())
    assert Job.from_json(job.to_json()) == job
    assert job.route[0] == "0xaAaAaAaaAaAaAaaAaAAAAAAAAaaaAaAaAaaAaaAa"  # checksummed


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("maxTokens", "7"),  # eth-account would sign "7" as 7; we refuse it
        ("maxTokens", True),
        ("maxTokens", -1),
        ("maxTokens", 2**32),
        ("maxTokens", 1.5),
        ("nonce", 2**256),
        ("deadline", 2**64),
        ("maxPricePerToken", "1000"),
        ("spanStarts", [0, 2**16]),
        ("spanEnds", [15, "30"]),
        ("client", "0x1234"),
        ("client", "0xAAAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),  # bad checksum
        ("route", "0x" + "aa" * 20),
        ("route", [NODE_A, 5]),
        ("modelId", "0x" + "00" * 32),
        ("modelId", "0x1234"),
    ],
)
def test_rejects_bad_values_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ProtocolError) as err:
        Job.from_json(body(**{field: value}))
    assert err.value.message.startswith(field)


def test_rejects_unequal_route_lengths_missing_and_unknown_fields() -> None:
    with pytest.raises(ProtocolError, match="equal lengths"):
        Job.from_json(body(spanEnds=[15]))
    incomplete = body()
    del incomplete["nonce"]
    with pytest.raises(ProtocolError, match="nonce: missing"):
        Job.from_json(incomplete)
    with pytest.raises(ProtocolError, match="unknown field 'tip'"):
        Job.from_json(body(tip=1))


def test_constructing_in_code_is_checked_and_normalised() -> None:
    job = Job.from_json(body())
    fields = {**job.__dict__, "route": [NODE_A.upper().replace("0X", "0x"), NODE_B]}
    assert Job(**fields) == job
    with pytest.raises(ProtocolError, match="maxTokens"):
        Job(**{**job.__dict__, "max_tokens": "7"})


def test_route_check_matches_the_contract_rule() -> None:
    Job.from_json(body()).check_route()
    for starts, ends in (([0, 16], [15, 30]), ([1, 15], [15, 30]), ([0, 15], [15, 15]), ([], [])):
        route = [NODE_A, NODE_B][: len(starts)]
        with pytest.raises(JobRejected) as err:
            Job.from_json(body(route=route, spanStarts=starts, spanEnds=ends)).check_route()
        assert err.value.code == "InvalidRoute"


def test_signature_recovers_the_client_and_binds_the_domain() -> None:
    job = Job.from_json(body())
    signature = sign_job(job, CLIENT, 31337, MARKET)
    assert recover_job_signer(job, signature, 31337, MARKET) == CLIENT.address
    assert recover_job_signer(job, signature, 1, MARKET) != CLIENT.address
    other_market = "0x" + "dd" * 20
    assert job_digest(job, 31337, MARKET) != job_digest(job, 31337, other_market)


def test_only_the_client_may_sign() -> None:
    job = Job.from_json(body())
    with pytest.raises(ProtocolError, match="client"):
        sign_job(job, Account.from_key(b"\x02" * 32), 31337, MARKET)
