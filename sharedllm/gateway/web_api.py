"""The web page and its JSON API (wallet-signed jobs), added to the gateway's application.

    GET  /                              the page (500 with instructions if not built)
    GET  /assets/{name}                 its stylesheet and bundled script
    GET  /api/config                    chain, addresses, ABI fragments, model, EIP-712 domain
    GET  /api/network                   nodes, layer coverage, recent slashes
    POST /api/chat                      {client, messages, max_tokens} -> server-sent events
    POST /api/jobs/{job_id}/signature   {signature} or {refused: true}
    GET  /api/jobs/{job_id}             the job's status and cost

Errors are ``{"error": {"code", "message", "details"?}}`` with the error's HTTP status,
whatever error shape the rest of the gateway uses for its OpenAI routes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from sharedllm.errors import ProtocolError, SharedLLMError
from sharedllm.gateway import web_chat, web_jobs
from sharedllm.gateway.state import GATEWAY, GatewayState
from sharedllm.gateway.wallet_payer import PendingSignatures
from sharedllm.gateway.web_config import page_config
from sharedllm.gateway.web_network import network_payload
from sharedllm.gateway.web_page import add_page_routes
from sharedllm.peers import server_errors
from sharedllm.protocol import untrusted_json
from sharedllm.protocol.types import parse_job_id

EXTRAS_KEY = "web"


def _pending(state: GatewayState) -> PendingSignatures:
    return state.extras.setdefault(EXTRAS_KEY, PendingSignatures())


async def _body(request: web.Request) -> Any:
    try:
        return untrusted_json.loads(await request.read())
    except ValueError as exc:
        raise ProtocolError(f"body: {exc}", field="body") from None


def _error(exc: SharedLLMError) -> web.Response:
    """Our error body, so the page can branch on ``error.code`` for every web route."""
    return web.json_response({"error": exc.to_json()}, status=exc.http_status)


web_errors = server_errors.error_middleware("gateway", _error)


async def get_config(request: web.Request) -> web.StreamResponse:
    state = request.app[GATEWAY]
    return web.json_response(await asyncio.to_thread(page_config, state))


async def get_network(request: web.Request) -> web.StreamResponse:
    return web.json_response(await network_payload(request.app[GATEWAY]))


async def post_chat(request: web.Request) -> web.StreamResponse:
    state = request.app[GATEWAY]
    return await web_chat.chat(request, await _body(request), state, _pending(state))


async def post_signature(request: web.Request) -> web.StreamResponse:
    state = request.app[GATEWAY]
    jid = parse_job_id(request.match_info["job_id"], "job_id")
    signature = web_jobs.parse_signature_body(await _body(request))
    return web.json_response(web_jobs.deliver(_pending(state), jid, signature))


async def get_job(request: web.Request) -> web.StreamResponse:
    state = request.app[GATEWAY]
    jid = parse_job_id(request.match_info["job_id"], "job_id")
    return web.json_response(await web_jobs.job_status(state.chain, state.book, jid))


def add_routes(app: web.Application) -> None:
    """Add the web page's routes, and the middleware that answers their errors in the
    page's shape, to the gateway's application (before it starts)."""
    app.middlewares.append(web_errors)
    add_page_routes(app)
    app.router.add_get("/api/config", get_config)
    app.router.add_get("/api/network", get_network)
    app.router.add_post("/api/chat", post_chat)
    app.router.add_post("/api/jobs/{job_id}/signature", post_signature)
    app.router.add_get("/api/jobs/{job_id}", get_job)
