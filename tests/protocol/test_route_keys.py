"""Routes name the key each https hop's link is pinned to, and a person may pin one on the
command line as URL#KEY: both parsed strictly."""

from __future__ import annotations

import pytest

from sharedllm.errors import ProtocolError
from sharedllm.protocol.session_msgs import Hop, parse_open, parse_pinned_url

KEY = "0x" + "ab" * 32
MODEL = "0x" + "11" * 32


def _open(route: list[dict], hop_index: int = 0) -> dict:
    return {
        "session_id": "session-1",
        "model_id": MODEL,
        "route": route,
        "hop_index": hop_index,
        "max_length": 64,
    }


def test_a_route_carries_each_hops_key_and_round_trips() -> None:
    route = [
        Hop("https://a:1", 0, 10, KEY).to_json(),
        Hop("https://b:2", 10, 30, "0x" + "CD" * 32).to_json(),
    ]
    opened = parse_open(_open(route))
    assert [h.key for h in opened.route] == [KEY, "0x" + "cd" * 32]
    assert parse_open(opened.to_json()) == opened
    assert "key" not in Hop("http://a:1", 0, 30).to_json()  # plain hops as before


def test_a_hop_that_pushes_over_https_must_be_told_the_next_key() -> None:
    """Without it, the pushing node could only trust on first use: whoever answers at the
    next hop's address would read every hidden state of the session."""
    route = [
        {"url": "http://a:1", "start": 0, "end": 10},
        {"url": "https://b:2", "start": 10, "end": 30},
    ]
    with pytest.raises(ProtocolError) as refused:
        parse_open(_open(route, hop_index=0))
    assert refused.value.details["field"] == "route[1].key"
    assert parse_open(_open(route, hop_index=1)).hop_index == 1  # the last hop pushes nowhere


@pytest.mark.parametrize("key", ["ab" * 32, "0x" + "ab" * 31, "0x" + "zz" * 32, 7, None])
def test_a_malformed_hop_key_is_refused_naming_the_hop(key) -> None:
    route = [{"url": "https://a:1", "start": 0, "end": 30, "key": key}]
    with pytest.raises(ProtocolError) as refused:
        parse_open(_open(route))
    assert refused.value.details["field"] == "route[0].key"


def test_a_url_may_pin_its_key_after_a_hash() -> None:
    assert parse_pinned_url("https://h:8001", "nodes") == ("https://h:8001", None)
    assert parse_pinned_url(f"https://h:8001/#{KEY}", "nodes") == ("https://h:8001", KEY)
    assert parse_pinned_url("https://h:8001#" + "AB" * 32, "nodes") == ("https://h:8001", KEY)
    with pytest.raises(ProtocolError, match="ed25519 key"):
        parse_pinned_url("https://h:8001#0x1234", "nodes")
