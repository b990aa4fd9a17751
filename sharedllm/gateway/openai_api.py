"""The OpenAI-compatible API under ``/v1`` (see docs/GATEWAY.md).

Handlers authenticate the key, parse the body strictly, and hand the request to a
``PaidAnswer``; every refusal is a ``SharedLLMError`` that ``openai_errors`` turns into
OpenAI's error shape, so the official client libraries raise their usual exceptions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from contextlib import aclosing
from typing import Any

from aiohttp import web

from sharedllm.errors import (
    JobRejected,
    ModelError,
    PeerError,
    ProtocolError,
    SharedLLMError,
)
from sharedllm.gateway import sse
from sharedllm.gateway.answer import PaidAnswer
from sharedllm.gateway.api_keys import ApiKey
from sharedllm.gateway.budget_payer import BudgetPayer
from sharedllm.gateway.openai_shapes import GenerationRequest, parse_request
from sharedllm.gateway.state import GATEWAY, GatewayState
from sharedllm.peers import server_errors
from sharedllm.protocol import untrusted_json

log = logging.getLogger("sharedllm.gateway")
MAX_BODY_BYTES = 4 << 20
_TYPES = {401: "authentication_error", 429: "insufficient_quota"}
# Retrying cannot fix these, and the openai client would otherwise retry a 429 twice.
_FINAL = {"BUDGET_EXCEEDED", "OPERATOR_ESCROW_LOW", "NO_OPERATOR"}
# Our codes under the names OpenAI's API gives them, which its clients branch on.
OPENAI_CODES = {
    "CONTEXT_LENGTH_EXCEEDED": "context_length_exceeded",
    "MODEL_NOT_FOUND": "model_not_found",
    "UNSUPPORTED_MEDIA_TYPE": "unsupported_media_type",
    "BODY_TOO_LARGE": "body_too_large",
    "NOT_FOUND": "not_found",
    "HTTP_ERROR": "http_error",
}


def model_alias(state: GatewayState) -> str:
    """A friendly name for the model, e.g. ``smollm2-135m-instruct``."""
    return state.client_model.manifest.name.lower()


def error_response(exc: SharedLLMError) -> web.Response:
    status = exc.http_status
    if isinstance(exc, JobRejected | PeerError) and status < 500:
        status = 502  # a node refused or failed: the network's problem, not the caller's
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    field = exc.details.get("field")
    body = {
        "error": {
            "message": exc.message,
            "type": kind,
            "param": field if isinstance(field, str) else None,
            "code": OPENAI_CODES.get(exc.code, exc.code),
        }
    }
    headers = {"x-should-retry": "false"} if exc.code in _FINAL else None
    return web.json_response(body, status=status, headers=headers)


openai_errors = server_errors.error_middleware("gateway", error_response)


def v1_app() -> web.Application:
    """The ``/v1`` sub-application; the gateway state is read from the parent app."""
    app = web.Application(middlewares=[openai_errors], client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/models", models)
    app.router.add_get("/models/{model}", model)
    app.router.add_post("/chat/completions", chat_completions)
    app.router.add_post("/completions", completions)
    return app


def _state(request: web.Request) -> GatewayState:
    return request.config_dict[GATEWAY]


async def _authenticate(request: web.Request, state: GatewayState) -> ApiKey:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    presented = token.strip() if scheme.lower() == "bearer" else None
    return await asyncio.to_thread(state.keys.authenticate, presented)


async def _json_body(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise ProtocolError(
            f"Content-Type must be application/json, not {request.content_type!r}",
            code="UNSUPPORTED_MEDIA_TYPE",
            field="body",
        )
    try:
        return untrusted_json.loads(await request.read(), max_bytes=MAX_BODY_BYTES)
    except ValueError as exc:
        raise ProtocolError(f"body is not JSON: {exc}", field="body") from None


def _check_model(state: GatewayState, name: str) -> None:
    model_id = state.client_model.manifest.model_id
    if name.lower() not in (model_id, model_alias(state)):
        raise ModelError(
            f"the model {name!r} does not exist here; this gateway serves {model_alias(state)!r} "
            f"({model_id})",
            code="MODEL_NOT_FOUND",
            field="model",
        )


def _model_entries(state: GatewayState) -> list[dict[str, Any]]:
    names = (model_alias(state), state.client_model.manifest.model_id)
    return [{"id": n, "object": "model", "created": 0, "owned_by": "sharedllm"} for n in names]


async def models(request: web.Request) -> web.Response:
    state = _state(request)
    await _authenticate(request, state)
    return web.json_response({"object": "list", "data": _model_entries(state)})


async def model(request: web.Request) -> web.Response:
    """``GET /v1/models/{id}``: the same entry ``/v1/models`` lists under that id."""
    state = _state(request)
    await _authenticate(request, state)
    _check_model(state, request.match_info["model"])
    wanted = request.match_info["model"].lower()
    return web.json_response(next(m for m in _model_entries(state) if m["id"] == wanted))


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _complete(request, chat=True)


async def completions(request: web.Request) -> web.StreamResponse:
    return await _complete(request, chat=False)


async def _complete(request: web.Request, *, chat: bool) -> web.StreamResponse:
    state = _state(request)
    key = await _authenticate(request, state)
    req = parse_request(await _json_body(request), chat=chat)
    _check_model(state, req.model)
    if state.operator is None:
        err = SharedLLMError(
            "this gateway has no operator wallet, so it cannot pay for API requests",
            code="NO_OPERATOR",
        )
        err.http_status = 503
        raise err
    model = state.client_model
    ids = (
        model.chat_ids(list(req.messages or ()))
        if chat
        else model.prompt_ids(req.prompt or "", chat=False)
    )
    payer = await asyncio.to_thread(
        BudgetPayer, state.chain, state.operator, state.directory, state.book, state.keys,
        key.key_id,
    )  # fmt: skip
    answer = PaidAnswer(state, payer, req, ids)
    shape = _Shape(req, chat)
    if req.stream:
        return await _stream(request, answer, shape)
    text = "".join([piece async for piece in answer.pieces()])
    return web.json_response(shape.full(answer, text))


async def _stream(request: web.Request, answer: PaidAnswer, shape: _Shape) -> web.StreamResponse:
    """Stream the answer; the first token is awaited before the response starts, so a refusal
    (budget, route, escrow) still gets its proper HTTP status."""
    pieces = answer.pieces()
    async with aclosing(pieces):
        first = await anext(pieces, None)
        response = await sse.open_stream(request)
        try:
            if shape.chat:
                await sse.send(response, shape.chunk({"role": "assistant", "content": ""}))
            if first is not None:
                await sse.send(response, shape.chunk(first))
            async for piece in pieces:
                await sse.send(response, shape.chunk(piece))
        except sse.CLIENT_GONE:
            log.info("client left mid-stream; closing its session")
            return response
        except SharedLLMError as exc:
            await sse.send(response, json.loads(error_response(exc).text))
            return response
    try:
        for event in shape.closing_chunks(answer):
            await sse.send(response, event)
        await sse.send_done(response)
    except sse.CLIENT_GONE:
        pass
    return response


class _Shape:
    """Response and chunk bodies for one request, chat or text completion."""

    def __init__(self, req: GenerationRequest, chat: bool) -> None:
        self.req, self.chat = req, chat
        self.id = ("chatcmpl-" if chat else "cmpl-") + secrets.token_hex(12)
        self.created = int(time.time())

    def _head(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.req.model}

    def full(self, answer: PaidAnswer, text: str) -> dict[str, Any]:
        if self.chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text}}
        else:
            choice = {"index": 0, "text": text}
        choice |= {"logprobs": None, "finish_reason": answer.finish_reason}
        obj = "chat.completion" if self.chat else "text_completion"
        return self._head(obj) | {
            "choices": [choice],
            "usage": answer.usage,
            "sharedllm": answer.extension(),
        }

    def chunk(self, piece: Any, finish: str | None = None) -> dict[str, Any]:
        if self.chat:
            delta = piece if isinstance(piece, dict) else {"content": piece}
            choice = {"index": 0, "delta": delta}
        else:
            choice = {"index": 0, "text": piece}
        choice |= {"logprobs": None, "finish_reason": finish}
        obj = "chat.completion.chunk" if self.chat else "text_completion"
        body = self._head(obj) | {"choices": [choice]}
        if self.req.include_usage:
            body["usage"] = None
        return body

    def closing_chunks(self, answer: PaidAnswer) -> list[dict[str, Any]]:
        """The chunk with the finish reason, then (if asked) the usage chunk; the last of
        them carries the ``sharedllm`` extension."""
        events = [self.chunk({} if self.chat else "", answer.finish_reason)]
        if self.req.include_usage:
            obj = "chat.completion.chunk" if self.chat else "text_completion"
            events.append(self._head(obj) | {"choices": [], "usage": answer.usage})
        events[-1]["sharedllm"] = answer.extension()
        return events
