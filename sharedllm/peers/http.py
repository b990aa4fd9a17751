"""Calling a node over HTTP, for clients and for nodes pushing to the next hop.

Every call has a timeout, and every way a peer can fail (refused, reset, stalled, 5xx, a body
that does not parse) becomes a ``SharedLLMError``. Failures of the peer itself carry
``failed_url`` in their details so the client knows which hop to replace; an error that a
node passes on from further down the route keeps the ``failed_url`` it already names.

``link_delay_s`` (test/bench only) holds every outbound frame back for a fixed one-way delay,
standing in for a slow link on a machine without netem.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from sharedllm.errors import LinkUntrusted, PeerError, SharedLLMError
from sharedllm.peers.link_tls import LinkTrust
from sharedllm.protocol import frames, untrusted_json
from sharedllm.protocol.frames import TensorFrame
from sharedllm.protocol.wire_errors import error_from_body

JSON = dict[str, Any]
# The most a peer's answer may hold: a peer we do not trust must not fill our memory.
MAX_JSON_ANSWER = 1 << 20
MAX_BINARY_ANSWER = 256 << 20  # a frame of a long history, a transcript or a shard
_CHUNK = 1 << 16


class PeerClient:
    """Calls to nodes; an https node is reached only over a link pinned to its key
    (``trust``, see ``link_tls``)."""

    def __init__(
        self,
        *,
        link_delay_s: float = 0.0,
        connect_timeout: float = 5.0,
        trust: LinkTrust | None = None,
    ) -> None:
        self.link_delay_s = link_delay_s
        self.connect_timeout = connect_timeout
        self.trust = trust if trust is not None else LinkTrust()
        self._http: aiohttp.ClientSession | None = None

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, force_close=False),
                auto_decompress=False,
            )
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> PeerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def get_json(
        self,
        url: str,
        timeout: float,
        max_bytes: int = MAX_JSON_ANSWER,
        headers: dict[str, str] | None = None,
    ) -> JSON:
        status, body, _ = await self._call("GET", url, None, None, timeout, max_bytes, headers)
        return _json(body, url, status)

    async def post_json(
        self, url: str, payload: JSON, timeout: float, headers: dict[str, str] | None = None
    ) -> JSON:
        data = json.dumps(payload).encode()
        status, body, _ = await self._call(
            "POST", url, data, "application/json", timeout, MAX_JSON_ANSWER, headers
        )
        return _json(body, url, status)

    async def delete(self, url: str, timeout: float, headers: dict[str, str] | None = None) -> None:
        await self._call("DELETE", url, None, None, timeout, MAX_JSON_ANSWER, headers)

    async def post_frame(
        self,
        url: str,
        frame: TensorFrame | bytes,
        timeout: float,
        headers: dict[str, str] | None = None,
    ) -> bytes:
        """Send a frame (after the injected link delay); returns the raw answer body."""
        data = frame if isinstance(frame, bytes) else frames.encode(frame)
        if self.link_delay_s:
            await asyncio.sleep(self.link_delay_s)
        _, body, _ = await self._call(
            "POST", url, data, frames.CONTENT_TYPE, timeout, MAX_BINARY_ANSWER, headers
        )
        return body

    async def get_frame(
        self, url: str, timeout: float, headers: dict[str, str] | None = None
    ) -> TensorFrame:
        _, body, ctype = await self._call(
            "GET", url, None, None, timeout, MAX_BINARY_ANSWER, headers
        )
        if ctype != frames.CONTENT_TYPE:
            raise PeerError(f"{url} answered {ctype}, not a frame", failed_url=_base(url))
        try:
            return frames.decode(body)
        except SharedLLMError as exc:
            raise PeerError(f"{url} sent a bad frame: {exc}", failed_url=_base(url)) from exc

    async def get_bytes(self, url: str, timeout: float) -> bytes:
        _, body, _ = await self._call("GET", url, None, None, timeout, MAX_BINARY_ANSWER)
        return body

    async def _call(
        self,
        method: str,
        url: str,
        data: bytes | None,
        ctype: str | None,
        timeout: float,
        max_bytes: int,
        extra_headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, str]:
        status, body, content_type = await self._exchange(
            method, url, data, ctype, timeout, max_bytes, extra_headers
        )
        if status >= 400:
            raise _peer_error(url, status, body)
        return status, body, content_type

    async def answers(self, base_url: str, timeout: float) -> bool:
        """Whether the node at ``base_url`` answers at all within ``timeout``: any HTTP
        answer counts (a busy node's 429 too), only silence or a broken link does not."""
        try:
            await self._exchange("GET", f"{base_url}/info", None, None, timeout, MAX_JSON_ANSWER)
        except PeerError:
            return False
        return True

    async def _exchange(
        self,
        method: str,
        url: str,
        data: bytes | None,
        ctype: str | None,
        timeout: float,
        max_bytes: int,
        extra_headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, str]:
        """One request and its whole answer, whatever its status; transport failures only
        raise (as ``PeerError``)."""
        headers = {**({"Content-Type": ctype} if ctype else {}), **(extra_headers or {})}
        limits = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, self.connect_timeout))
        try:
            link = await self.trust.context(_base(url), min(timeout, self.connect_timeout))
            async with self.http.request(
                method, url, data=data, headers=headers, timeout=limits, ssl=link or True
            ) as resp:
                body = await _read_within(resp, max_bytes, url)
                status, content_type = resp.status, resp.content_type
        except aiohttp.ClientConnectorCertificateError:
            raise LinkUntrusted(
                f"{_base(url)} no longer presents the key pinned for it", failed_url=_base(url)
            ) from None
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            raise PeerError(f"{method} {url} {_failure(exc)}", failed_url=_base(url)) from None
        return status, body, content_type


def _failure(exc: BaseException) -> str:
    """A transport failure in words a person reads (a repr of aiohttp's errors is not)."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"failed: cannot connect ({exc.os_error.strerror or exc.os_error})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "failed: the peer closed the connection"
    if isinstance(exc, ValueError):  # aiohttp's InvalidURL among them
        return "failed: not a valid URL"
    return f"failed: {type(exc).__name__}: {str(exc)[:160]}"


async def read_capped(
    stream: aiohttp.StreamReader, declared: int | None, max_bytes: int
) -> bytes | None:
    """A whole body of at most ``max_bytes``, or None as soon as it is known to be longer
    (its declared length, or what arrived so far): a peer must not fill our memory. Nodes
    read request bodies with it, clients a node's answers."""
    if declared is not None and declared > max_bytes:
        return None
    parts, size = [], 0
    async for chunk in stream.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            return None
        parts.append(chunk)
    return b"".join(parts)


async def _read_within(resp: aiohttp.ClientResponse, max_bytes: int, url: str) -> bytes:
    body = await read_capped(resp.content, resp.content_length, max_bytes)
    if body is None:
        raise PeerError(f"{url} answered more than {max_bytes} bytes", failed_url=_base(url))
    return body


def _peer_error(url: str, status: int, body: bytes) -> SharedLLMError:
    try:
        parsed = untrusted_json.loads(body)
    except ValueError:
        parsed = None
    err = error_from_body(status, parsed)
    if status >= 500 and "failed_url" not in err.details:
        err.details["failed_url"] = _base(url)
    return err


def _json(body: bytes, url: str, status: int) -> JSON:
    try:
        parsed = untrusted_json.loads(body)
    except ValueError as exc:
        raise PeerError(f"{url} answered HTTP {status} with a body we refuse: {exc}") from None
    if not isinstance(parsed, dict):
        raise PeerError(f"{url} answered with JSON that is not an object")
    return parsed


def _base(url: str) -> str:
    """The node's base URL (scheme://host:port) of an endpoint URL."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"
