"""What every gateway handler shares: the chain, the model's client half, the node directory.

The client half of the model (embedding, final norm, head, tokenizer) is loaded once per
gateway and shared by every request; each request gets its own ``TextGenerator`` (its own
route and session) on top of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sharedllm.chain.connection import Chain
from sharedllm.client.job_book import JobBook
from sharedllm.client.registry_directory import RegistryDirectory
from sharedllm.model.client_model import ClientModel
from sharedllm.model.store import ModelStore


@dataclass
class GatewayState:
    chain: Chain
    store: ModelStore
    client_model: ClientModel
    directory: RegistryDirectory
    operator: Any  # LocalAccount that pays for API requests; None serves the web page only
    book: JobBook  # every job the gateway signed or relayed
    rpc_url: str  # what the web page's wallet should be on (chain id from ``chain``)
    keys: Any = None  # the API keys and their budgets (sharedllm.gateway.api_keys)
    extras: dict[str, Any] = field(default_factory=dict)  # per-part state, keyed by part


GATEWAY = web.AppKey("gateway", GatewayState)
