"""Assemble the gateway: its shared state and the aiohttp application serving it.

The OpenAI API lives in its own ``/v1`` sub-application with OpenAI's error shape; the web
page's routes (``web_api``) are added to the main application, which holds the state.
"""

from __future__ import annotations

from pathlib import Path

import torch
from aiohttp import web
from eth_account.signers.local import LocalAccount

from sharedllm import paths
from sharedllm.chain.connection import Chain
from sharedllm.client.job_book import JobBook
from sharedllm.client.registry_directory import RegistryDirectory
from sharedllm.gateway import openai_api, web_api
from sharedllm.gateway.api_keys import ApiKeys
from sharedllm.gateway.state import GATEWAY, GatewayState
from sharedllm.model.client_model import ClientModel
from sharedllm.model.store import ModelStore


def default_book_path() -> Path:
    return paths.home() / "gateway" / "jobs.db"


def make_state(
    chain: Chain,
    rpc_url: str,
    operator: LocalAccount | None,
    *,
    model_id: str | None = None,
    keys: ApiKeys | None = None,
    store: ModelStore | None = None,
    book_path: Path | None = None,
    device: torch.device | None = None,
) -> GatewayState:
    """Load the model's client half once (on ``device``, the CPU by default) and open the
    gateway's job book and key store."""
    store = store or ModelStore()
    manifest = store.manifest(model_id)
    return GatewayState(
        chain=chain,
        store=store,
        client_model=ClientModel(store, manifest, device),
        directory=RegistryDirectory(chain, manifest.model_id),
        operator=operator,
        book=JobBook(book_path or default_book_path()),
        rpc_url=rpc_url,
        keys=keys if keys is not None else ApiKeys(),
    )


def build_app(state: GatewayState) -> web.Application:
    # /v1 answers its own errors in OpenAI's shape, the page's routes in ours (web_api).
    # aiohttp reads every body under the root application's limit, sub-applications' too.
    app = web.Application(client_max_size=openai_api.MAX_BODY_BYTES)
    app[GATEWAY] = state
    app.add_subapp("/v1", openai_api.v1_app())
    web_api.add_routes(app)
    return app
