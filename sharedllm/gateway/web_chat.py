"""``POST /api/chat``: an answer streamed as server-sent events, paid by the visitor's wallet.

Events, in order: ``route`` (the planned hops and their prices), ``sign`` (the job as
``eth_signTypedData_v4`` JSON and its id; the page posts the wallet's answer to
``/api/jobs/{id}/signature``), ``signed``, then ``token`` pieces, and finally ``done``
(tokens charged, cost, job ids) or ``error`` ``{code, message, details}``. A failover
repeats ``route``/``sign``/``signed`` for the new route's job.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from sharedllm.client.generate import TextGenerator
from sharedllm.errors import ProtocolError, SharedLLMError
from sharedllm.gateway.state import GatewayState
from sharedllm.gateway.wallet_payer import PendingSignatures, WalletPayer
from sharedllm.model.sampling import SamplingParams
from sharedllm.protocol.types import Address, parse_address

log = logging.getLogger("sharedllm.gateway")
MAX_TOKENS_LIMIT = 512
MAX_MESSAGES = 64


@dataclass(frozen=True)
class ChatRequest:
    client: Address
    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float

    @classmethod
    def from_json(cls, body: Any) -> ChatRequest:
        if not isinstance(body, dict):
            raise ProtocolError("body: expected a JSON object", field="body")
        unknown = sorted(set(body) - {"client", "messages", "max_tokens", "temperature"})
        if unknown:
            raise ProtocolError(f"{unknown[0]}: unknown field", field=unknown[0])
        messages = body.get("messages")
        if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
            raise ProtocolError(
                f"messages: expected a list of 1..{MAX_MESSAGES} messages", field="messages"
            )
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or set(m) != {"role", "content"}:
                raise ProtocolError(
                    f"messages[{i}]: expected {{role, content}}", field=f"messages[{i}]"
                )
        max_tokens = body.get("max_tokens", 128)
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
            raise ProtocolError("max_tokens: expected an integer", field="max_tokens")
        if not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
            raise ProtocolError(f"max_tokens: must be 1..{MAX_TOKENS_LIMIT}", field="max_tokens")
        temperature = body.get("temperature", 0.0)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise ProtocolError("temperature: expected a number", field="temperature")
        if not 0.0 <= temperature <= 2.0:
            raise ProtocolError("temperature: must be 0..2", field="temperature")
        return cls(
            parse_address(body.get("client"), "client"),
            messages,
            max_tokens,
            float(temperature),
        )


class EventStream:
    """Server-sent events on one response; a gone browser stops the answer it was paying for."""

    def __init__(self, response: web.StreamResponse) -> None:
        self.response = response

    async def send(self, event: str, data: dict[str, Any]) -> None:
        payload = json.dumps(data, separators=(",", ":"))
        await self.response.write(f"event: {event}\ndata: {payload}\n\n".encode())


async def chat(
    request: web.Request, body: Any, state: GatewayState, pending: PendingSignatures
) -> web.StreamResponse:
    """Parse ``body`` first, so a bad request is a plain JSON error, not a stream."""
    chat_request = ChatRequest.from_json(body)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    stream = EventStream(response)
    try:
        await _answer(chat_request, state, pending, stream)
    except SharedLLMError as exc:
        await stream.send("error", exc.to_json())
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as exc:  # the stream is open: a bare 500 would leave the page hanging
        log.exception("web chat failed")
        await stream.send("error", {"code": "INTERNAL", "message": str(exc)[:300]})
    await response.write_eof()
    return response


async def _answer(
    req: ChatRequest, state: GatewayState, pending: PendingSignatures, stream: EventStream
) -> None:
    payer = await asyncio.to_thread(
        WalletPayer, state.chain, req.client, state.directory, pending, stream.send, state.book
    )
    sampling = SamplingParams(req.temperature, 1.0, None)
    pieces: list[str] = []
    async with TextGenerator(
        state.directory, client_model=state.client_model, payer=payer, store=state.store
    ) as gen:
        async for piece in gen.chat(req.messages, max_tokens=req.max_tokens, sampling=sampling):
            pieces.append(piece)
            await stream.send("token", {"text": piece})
    jobs = [
        {
            "jobId": p.signed.job_id,
            "tokens": p.tokens,
            "cost": str(p.cost),
            "pricePerToken": str(p.price_per_token),
            "route": [
                {"address": h.address, "url": h.url, "span": [h.start, h.end]} for h in p.hops
            ],
        }
        for p in payer.jobs
    ]
    await stream.send(
        "done",
        {
            "text": "".join(pieces),
            "tokens": sum(p.tokens for p in payer.jobs),
            "cost": str(sum(p.cost for p in payer.jobs)),
            "jobs": jobs,
        },
    )
