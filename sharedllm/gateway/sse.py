"""Server-sent events as OpenAI streams them: ``data: {json}\\n\\n`` ... ``data: [DONE]\\n\\n``."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

CLIENT_GONE = (ConnectionError, RuntimeError)
"""What writing to a closed response raises (aiohttp's ClientConnectionResetError is a
ConnectionResetError; a response whose transport is already gone raises RuntimeError)."""


async def open_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            # Proxies such as nginx would otherwise buffer the tokens into one late burst.
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    return response


async def send(response: web.StreamResponse, event: dict[str, Any]) -> None:
    data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    await response.write(f"data: {data}\n\n".encode())


async def send_done(response: web.StreamResponse) -> None:
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
