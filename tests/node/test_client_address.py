"""Which remote addresses count as one client for a node's per-client limits."""

from __future__ import annotations

import pytest

from sharedllm.peers.client_address import client_of


@pytest.mark.parametrize(
    ("host", "client"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),  # the same host's other address
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),  # the next /64 is another client
        ("fe80::1%eth0", "fe80::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),  # IPv4 written as IPv6 is that IPv4 client
        ("::1", "::/64"),
        ("", ""),
        ("not-an-address", "not-an-address"),
    ],
)
def test_client_of(host: str, client: str):
    assert client_of(host) == client
