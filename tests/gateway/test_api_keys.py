"""The API key store: budgets, reservations and revocation, without any process."""

from __future__ import annotations

from pathlib import Path

import pytest

from sharedllm.errors import AccessError, BudgetError, ConfigError
from sharedllm.gateway.api_keys import KEY_PREFIX, ApiKeys


@pytest.fixture
def keys(tmp_path: Path) -> ApiKeys:
    store = ApiKeys(tmp_path / "keys.db")
    yield store
    store.close()


def test_a_key_authenticates_and_only_its_hash_is_stored(keys: ApiKeys, tmp_path: Path) -> None:
    key, secret = keys.add("alice", 1000)
    assert keys.authenticate(secret) == key
    # The part after the id is the secret (urlsafe: it may itself hold "-").
    assert (
        secret.removeprefix(KEY_PREFIX).split("-", 1)[1].encode()
        not in (tmp_path / "keys.db").read_bytes()
    )


@pytest.mark.parametrize(
    "presented",
    [None, "", "sk-sharedllm-000000000000-" + "x" * 43, "Bearer nonsense", "sk-other"],
)
def test_missing_or_unknown_keys_are_refused(keys: ApiKeys, presented: str | None) -> None:
    keys.add("alice", 1000)
    with pytest.raises(AccessError) as refused:
        keys.authenticate(presented)
    assert refused.value.http_status == 401


def test_a_wrong_secret_for_a_real_key_id_is_refused(keys: ApiKeys) -> None:
    _, secret = keys.add("alice", 1000)
    forged = secret[:-4] + ("aaaa" if not secret.endswith("aaaa") else "bbbb")
    with pytest.raises(AccessError):
        keys.authenticate(forged)


def test_a_revoked_key_is_refused(keys: ApiKeys) -> None:
    _, secret = keys.add("alice", 1000)
    keys.revoke("alice")
    with pytest.raises(AccessError) as refused:
        keys.authenticate(secret)
    assert refused.value.code == "KEY_REVOKED"


def test_names_are_unique_and_checked(keys: ApiKeys) -> None:
    keys.add("alice", 1)
    with pytest.raises(ConfigError, match="already exists"):
        keys.add("alice", 1)
    with pytest.raises(ConfigError) as bad:
        keys.add("no spaces please", 1)
    assert bad.value.details["field"] == "name"


def test_reservations_hold_budget_until_settled_at_the_actual_cost(keys: ApiKeys) -> None:
    key, _ = keys.add("alice", 1000)
    first = keys.reserve(key.key_id, 600)
    with pytest.raises(BudgetError) as short:
        keys.reserve(key.key_id, 500)  # 600 held, 400 left
    assert short.value.details["remaining"] == 400
    assert short.value.http_status == 429
    keys.settle(first, 250)
    keys.settle(first, 250)  # settling twice charges once
    alice = keys.get("alice")
    assert (alice.spent, alice.reserved, alice.remaining) == (250, 0, 750)
    keys.reserve(key.key_id, 750)
    with pytest.raises(BudgetError):
        keys.reserve(key.key_id, 1)


def test_a_reservation_survives_a_restart(tmp_path: Path) -> None:
    first = ApiKeys(tmp_path / "keys.db")
    key, _ = first.add("alice", 1000)
    rid = first.reserve(key.key_id, 900)
    first.attach(rid, "0x" + "ab" * 32, 12345)
    first.close()
    again = ApiKeys(tmp_path / "keys.db")
    try:
        assert again.get("alice").remaining == 100
        (held,) = again.reservations()
        assert (held.amount, held.job_id, held.deadline) == (900, "0x" + "ab" * 32, 12345)
    finally:
        again.close()


def test_two_stores_on_one_file_cannot_overspend(tmp_path: Path) -> None:
    a, b = ApiKeys(tmp_path / "keys.db"), ApiKeys(tmp_path / "keys.db")
    try:
        key, _ = a.add("alice", 1000)
        a.reserve(key.key_id, 700)
        with pytest.raises(BudgetError):
            b.reserve(key.key_id, 700)
    finally:
        a.close()
        b.close()
