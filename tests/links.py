"""Encrypted links for tests that talk to nodes below the package's client (raw HTTP, raw
sockets, a hostile peer's requests): TLS contexts pinned to the keys the nodes reported."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp

from sharedllm.peers.link_tls import certificate_key


class Node(Protocol):
    url: str
    key: str | None


def pinned_ssl(*nodes: Node) -> ssl.SSLContext:
    """A client context that trusts exactly these nodes' certificates, each checked to carry
    the key its node reported at start."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    for node in nodes:
        parts = urlsplit(node.url)
        assert parts.scheme == "https" and node.key, f"{node.url} serves no TLS"
        der = ssl.PEM_cert_to_DER_cert(
            ssl.get_server_certificate((parts.hostname or "", parts.port or 443), timeout=10)
        )
        assert "0x" + certificate_key(der, node.url).hex() == node.key.lower()
        ctx.load_verify_locations(cadata=der)
    return ctx


def node_http(*nodes: Node, **connector: Any) -> aiohttp.ClientSession:
    """An aiohttp session whose every link is pinned to one of ``nodes``."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=pinned_ssl(*nodes), **connector)
    )


def call_json(
    url: str,
    link: ssl.SSLContext,
    method: str = "GET",
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One JSON request over a pinned link: (status, parsed answer, None if empty)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30, context=link) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
