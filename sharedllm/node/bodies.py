"""Request bodies read within a limit per endpoint, before anything is parsed.

aiohttp's ``client_max_size`` is one cap for every route, sized for the largest frame a node
accepts (a failover replay of a whole history). A JSON endpoint needs far less, and a step
needs at most one step's positions: each route reads no more than its own limit, stops
reading the moment a body goes past it, and parses a large body off the event loop so that
one client's body never stalls everyone else's steps.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from sharedllm.errors import BodySlow, BodyTooLarge, ProtocolError
from sharedllm.peers.http import read_capped
from sharedllm.protocol import frames, untrusted_json
from sharedllm.protocol.frames import TensorFrame

T = TypeVar("T")

MAX_JSON_BODY = 256 * 1024
# A body trickled in a byte at a time holds a connection and a buffer: the whole body must
# arrive within this, whatever its size (a full step is about 1.2 MB).
BODY_TIMEOUT_S = 30.0
_PARSE_INLINE = 64 * 1024  # bodies up to this size parse on the loop; larger ones in a thread


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The whole body, or ``BodyTooLarge`` as soon as it is known to pass ``max_bytes``."""
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            body = await read_capped(request.content, request.content_length, max_bytes)
    except TimeoutError:
        raise BodySlow(f"the body did not arrive within {BODY_TIMEOUT_S:.0f} s") from None
    if body is None:
        raise BodyTooLarge(f"the body is over this endpoint's {max_bytes} bytes")
    return body


async def read_json(request: web.Request, max_bytes: int = MAX_JSON_BODY) -> Any:
    raw = await read_body(request, max_bytes)
    try:
        return await _parse(functools.partial(untrusted_json.loads, max_bytes=max_bytes), raw)
    except ValueError as exc:
        raise ProtocolError(f"body: {exc}", field="body") from None


async def read_frame(request: web.Request, max_bytes: int) -> TensorFrame:
    if request.content_type != frames.CONTENT_TYPE:
        raise ProtocolError(
            f"expected Content-Type {frames.CONTENT_TYPE}", code="BAD_FRAME", field="content_type"
        )
    return await _parse(frames.decode, await read_body(request, max_bytes))


async def _parse(parse: Callable[[bytes], T], raw: bytes) -> T:
    """A small body parses on the event loop; a large one in a thread, so it stalls no one."""
    return parse(raw) if len(raw) <= _PARSE_INLINE else await asyncio.to_thread(parse, raw)
