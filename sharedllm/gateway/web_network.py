"""``GET /api/network``: the nodes, how they cover the model's layers, and recent slashes.

The same view as ``sharedllm nodes`` (registry records probed for an answer), plus the
market's latest ``JobChallenged`` events, so a visitor sees who was caught cheating and what
it cost them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sharedllm.chain.connection import Chain
from sharedllm.chain.transact import rpc
from sharedllm.client.network_view import read_network
from sharedllm.gateway.state import GatewayState

RECENT_BLOCKS = 50_000  # how far back to look for slashes: days on a real chain, all of a devnet
RECENT_SLASHES = 10


async def network_payload(state: GatewayState) -> dict[str, Any]:
    manifest = state.client_model.manifest
    view = await read_network(
        state.chain, manifest.model_id, num_layers=manifest.num_layers, store=state.store
    )
    body = view.to_json()
    model = next((m for m in view.models if m.model_id == manifest.model_id), None)
    body["model"] = {
        "id": manifest.model_id,
        "name": manifest.name,
        "numLayers": manifest.num_layers,
        "coverage": model.coverage if model else [0] * manifest.num_layers,
        "answeringCoverage": model.answering if model else None,
        "gaps": [list(g) for g in model.gaps] if model else [[0, manifest.num_layers]],
    }
    body["slashes"] = await asyncio.to_thread(recent_slashes, state.chain)
    return body


def recent_slashes(chain: Chain, limit: int = RECENT_SLASHES) -> list[dict[str, Any]]:
    """The latest ``JobChallenged`` events, newest first, with their block times."""
    latest = rpc(lambda: chain.w3.eth.block_number, "blockNumber")
    start = max(chain.deployment.deploy_block, latest - RECENT_BLOCKS, 0)
    logs = rpc(
        lambda: chain.market.contract.events.JobChallenged().get_logs(from_block=start),
        "JobChallenged logs",
    )
    rows = []
    for log in sorted(logs, key=lambda e: (e["blockNumber"], e["logIndex"]), reverse=True)[:limit]:
        args = log["args"]
        block = rpc(lambda n=log["blockNumber"]: chain.w3.eth.get_block(n), "getBlock")
        rows.append(
            {
                "jobId": "0x" + bytes(args["jobHash"]).hex(),
                "node": args["node"],
                "hop": int(args["hop"]),
                "slashed": str(args["slashed"]),
                "bounty": str(args["bounty"]),
                "block": log["blockNumber"],
                "timestamp": int(block["timestamp"]),
                "tx": "0x" + bytes(log["transactionHash"]).hex(),
            }
        )
    return rows
