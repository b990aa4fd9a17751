"""A staked registry for client tests, and a stand-in ``/info`` server.

Four nodes on a real anvil: three splitting 30 layers like the chain tests' network, plus a
cheaper fourth overlapping the first two, so coverage is uneven (2, 2, 1) rather than flat.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from eth_account.signers.local import LocalAccount

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.connection import Chain
from sharedllm.chain.devnet import Devnet, free_port
from sharedllm.chain.registry import NodeConfig
from sharedllm.protocol.job import Job
from sharedllm.protocol.node_info import NodeInfo

MODEL_ID = "0x" + "5e" * 32
NUM_LAYERS = 30


@dataclass(frozen=True)
class NodeSpec:
    account: int
    start: int
    end: int
    price: int  # wei per token per layer
    stake: int

    @property
    def pubkey(self) -> str:
        return "0x" + f"{self.account:02x}" * 32


NODES = (
    NodeSpec(1, 0, 10, 10**12, 100 * WEI_PER_SHARE),
    NodeSpec(2, 10, 20, 2 * 10**12, 150 * WEI_PER_SHARE),
    NodeSpec(3, 20, 30, 3 * 10**12, 200 * WEI_PER_SHARE),
    NodeSpec(5, 0, 15, 5 * 10**11, 120 * WEI_PER_SHARE),
)
CLIENT = 4
CLIENT_DEPOSIT = 1_000 * WEI_PER_SHARE


@dataclass
class Registered:
    devnet: Devnet
    chain: Chain
    deployment_file: Path
    endpoints: dict[int, str]  # dev account -> registered endpoint

    @property
    def client(self) -> LocalAccount:
        return dev_account(CLIENT)

    def cli(self) -> list[str]:
        return ["--deployment", str(self.deployment_file)]

    def job(self, route: tuple[NodeSpec, ...] = NODES[:3], **changes: object) -> Job:
        body = {
            "modelId": MODEL_ID,
            "route": [dev_account(n.account).address for n in route],
            "spanStarts": [n.start for n in route],
            "spanEnds": [n.end for n in route],
            "maxTokens": 32,
            "maxPricePerToken": max(n.price for n in route),
            "nonce": 7,
            "deadline": self.chain.w3.eth.get_block("latest")["timestamp"] + 600,
            "client": self.client.address,
        }
        body.update(changes)
        return Job.from_json(body)


def stake_all(devnet: Devnet, deployment_file: Path, endpoints: dict[int, str]) -> Registered:
    chain = devnet.chain()
    for spec in NODES:
        cfg = NodeConfig(
            endpoint=endpoints[spec.account],
            pubkey=spec.pubkey,
            model_id=MODEL_ID,
            start=spec.start,
            end=spec.end,
            price_per_token=spec.price,
        )
        chain.registry.stake(dev_account(spec.account), spec.stake, cfg, chain.token)
    chain.market.deposit(dev_account(CLIENT), CLIENT_DEPOSIT, chain.token)
    return Registered(devnet, chain, deployment_file, endpoints)


@contextmanager
def snapshot(chain: Chain) -> Iterator[None]:
    """Run a test on the shared chain and undo everything it did afterwards."""
    provider = chain.w3.provider
    taken = provider.make_request("evm_snapshot", [])["result"]
    try:
        yield
    finally:
        provider.make_request("evm_revert", [taken])


def info_body(spec: NodeSpec, start: int | None = None, end: int | None = None) -> dict:
    """What a real node at ``spec`` would answer at ``/info`` (span overridable to lie)."""
    info = NodeInfo(
        version="0.1.0",
        model_id=MODEL_ID,
        start=spec.start if start is None else start,
        end=spec.end if end is None else end,
        num_layers=NUM_LAYERS,
        hidden_size=576,
        sessions_open=0,
        sessions_max=4,
        free_cache_tokens=4096,
        ms_per_token=5.0,
        price=spec.price,
        public_key=spec.pubkey,
    )
    return info.to_json()


@contextmanager
def info_server(body: dict) -> Iterator[str]:
    """An HTTP server on a free loopback port answering ``GET /info`` with ``body``."""
    payload = json.dumps(body).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            found = self.path == "/info"
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload) if found else 0))
            self.end_headers()
            if found:
                self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def json_server(url: str, bodies: dict[str, dict]) -> Iterator[None]:
    """An HTTP server at ``url`` (a registered endpoint) answering ``GET path`` with
    ``bodies[path]``, and 404 for any other path."""
    payloads = {path: json.dumps(body).encode() for path, body in bodies.items()}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            payload = payloads.get(self.path, b"")
            self.send_response(200 if payload else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    port = int(url.rsplit(":", 1)[1])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
