"""``GET /batches/{batch_id}``: the jobs of a batch this node posted, for anyone.

A batch on chain is only hashes; its jobs must be public for anyone to prove one bad
(verifiers, the route's other hops, the clients it debits), so the poster serves them as
it posted them. Nothing here is secret: signed jobs, token counts and commitments.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from sharedllm.errors import BatchUnknown, ProtocolError
from sharedllm.node.ledger import Ledger

LEDGER = web.AppKey("batch_ledger", Ledger)


async def batch(request: web.Request) -> web.Response:
    raw = request.match_info["batch_id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 20:
        raise ProtocolError("batch_id: expected a decimal batch number", field="batch_id")
    ledger = request.app.get(LEDGER)
    row = None if ledger is None else await asyncio.to_thread(ledger.batch_by_id, int(raw))
    if row is None:
        raise BatchUnknown(f"this node posted no batch {raw}")
    return web.json_response({"batchId": int(raw), **json.loads(row["body"])})


def add_batch_routes(app: web.Application, ledger: Ledger | None) -> None:
    if ledger is not None:
        app[LEDGER] = ledger
    app.router.add_get("/batches/{batch_id}", batch)
