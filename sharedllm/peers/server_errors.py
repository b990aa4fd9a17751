"""How the node's and the gateway's HTTP servers turn any failure into one error.

Every refusal is a ``SharedLLMError`` with a stable code. aiohttp's own HTTP exceptions (an
unknown path, a body over the server's limit) and bugs become one too, here, in one place, so
that no request is ever answered with a traceback and one bad request disturbs no other.
Each server renders the error in its own shape: the node as ``SharedLLMError.to_json``, the
gateway as OpenAI's error object (``gateway/openai_api.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sharedllm.errors import BodyTooLarge, ProtocolError, SharedLLMError


def as_error(request: web.Request, exc: BaseException, server: str) -> SharedLLMError:
    """The error a failure of ``request`` on ``server`` (``"node"``, ``"gateway"``) stands for."""
    if isinstance(exc, SharedLLMError):
        return exc
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return BodyTooLarge(f"the request body is over this {server}'s limit: {exc.text}")
    if isinstance(exc, web.HTTPException):
        code = "NOT_FOUND" if exc.status == 404 else "HTTP_ERROR"
        refused = ProtocolError(f"{request.method} {request.path}: {exc.reason}", code=code)
        refused.http_status = exc.status
        return refused
    logging.getLogger(f"sharedllm.{server}").exception(
        "unexpected error in %s %s", request.method, request.path
    )
    err = SharedLLMError(f"internal error: {exc!r}", code="INTERNAL")
    err.http_status = 500
    return err


def error_middleware(
    server: str, render: Callable[[SharedLLMError], web.StreamResponse]
) -> Callable[[web.Request, Any], Awaitable[web.StreamResponse]]:
    """An aiohttp middleware answering every failure as ``render(as_error(...))``; HTTP
    redirects and other non-errors pass through."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return render(as_error(request, exc, server))
        except Exception as exc:  # a bug in one request must not take the server down
            return render(as_error(request, exc, server))

    return middleware
