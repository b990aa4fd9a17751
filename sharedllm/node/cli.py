"""``sharedllm-node run``: serve a span of the model's layers over HTTP."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from dataclasses import replace as replace_config
from pathlib import Path
from typing import Any

import click

from sharedllm.chain.cli_common import account_params, chain_params
from sharedllm.cli_base import (
    Args,
    Progress,
    command,
    flag,
    format_size,
    json_flag,
    option,
)
from sharedllm.errors import ConfigError
from sharedllm.model.device import DEVICES
from sharedllm.node.batching import DEFAULT_MAX_POSITIONS, DEFAULT_MAX_ROWS, DEFAULT_WAIT_MS
from sharedllm.peers.connection_cap import DEFAULT_PER_PEER

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?$", re.IGNORECASE)


def register(group: click.Group) -> None:
    """Add ``run`` and ``host``."""
    group.add_command(
        command(
            "run",
            "sharedllm.node.cli:run_node",
            "Serve a span of a model's layers.\n\n"
            "With an account (--keystore or --dev-account) the node serves only signed, "
            "prepaid jobs of the chain's JobMarket, for the span, model and price it "
            "registered with `sharedllm-node stake`.",
            run_params(),
        )
    )
    group.add_command(
        command(
            "host",
            "sharedllm.node.cli:host_nodes",
            "Keep the node's libraries loaded, so that `run` starts nodes in about a second.\n\n"
            "Imports torch, transformers and every stored model's modules once, then starts "
            "each `sharedllm-node run` of this user as a fork of this process. A node "
            "started so still belongs to its run command: output, signals and exit status.",
            [
                option(
                    "--socket",
                    type=PATH,
                    help="Unix socket to listen on (default: $SHAREDLLM_NODE_HOST, "
                    "else $SHAREDLLM_HOME/node-host.sock)",
                ),
                option(
                    "--models-dir", type=DIR, help="model store (default: $SHAREDLLM_HOME/models)"
                ),
                json_flag("print the ready line as one JSON object"),
            ],
        )
    )


PATH = click.Path(path_type=Path, dir_okay=False)
DIR = click.Path(path_type=Path, file_okay=False)


def run_params() -> list[click.Parameter]:
    return [
        option("--layers", default="auto", help="A:B (half-open), or auto"),
        option("--model", help="model id (default: the store's default model)"),
        option("--models-dir", type=DIR, help="model store (default: $SHAREDLLM_HOME/models)"),
        option("--host", default="127.0.0.1", help="address to listen on"),
        option("--port", type=int, default=0, help="0 picks a free port"),
        option("--public-url", help="the URL peers should use, if not https://host:port"),
        option(
            "--peer",
            multiple=True,
            help="URL of another node (repeatable): source of missing shards, and of the "
            "coverage that --layers auto balances",
        ),
        option(
            "--rebalance/--no-rebalance",
            default=None,
            help="look at the peers' coverage (the registry's nodes, on a paid network) every "
            "--rebalance-interval and move to thinner layers when the network would clearly "
            "gain, updating the registry entry of a staked node (default: on with --layers "
            "auto; an explicit --layers A:B pins the span unless --rebalance is given)",
        ),
        option(
            "--rebalance-interval",
            type=float,
            default=60.0,
            help="seconds between looks at the network's coverage",
        ),
        option(
            "--move-drain",
            type=float,
            default=600.0,
            help="seconds a move waits for the old span's sessions before it is called off",
        ),
        option("--memory-budget", help="e.g. 2G (default: half the available RAM)"),
        option("--max-sessions", type=int, default=16, help="sessions open at once"),
        option(
            "--max-sessions-per-client",
            type=int,
            help="free sessions one client address may hold (default: half of --max-sessions, "
            "at least 2)",
        ),
        option(
            "--max-connections-per-peer",
            type=int,
            default=DEFAULT_PER_PEER,
            help="open connections one remote address may hold; more are refused with 429",
        ),
        option(
            "--unstepped-timeout",
            type=float,
            default=15.0,
            help="seconds before an open session that never stepped is dropped",
        ),
        option(
            "--reclaim-idle",
            type=float,
            default=10.0,
            help="seconds: when this free node is full, a session that has not stepped for "
            "this long, of a client above its fair share of the cache and sessions, may be "
            "closed to make room for a client below its share",
        ),
        option("--cache-mb", type=int, default=512, help="KV cache + history budget, MiB"),
        option(
            "--max-batch",
            type=int,
            default=DEFAULT_MAX_ROWS,
            help="one-token steps of concurrent sessions run together as one batch of at "
            "most this many; 1 runs every step alone",
        ),
        option(
            "--batch-positions",
            type=int,
            default=DEFAULT_MAX_POSITIONS,
            help="a batch gathers at most this many cache positions (rows times the longest "
            "cache); longer sessions wait for the next batch",
        ),
        option(
            "--batch-wait-ms",
            type=float,
            default=DEFAULT_WAIT_MS,
            help="a one-token step waits at most this long for the other sessions decoding "
            "here to join its batch; 0 never waits",
        ),
        option(
            "--idle-timeout",
            type=float,
            default=120.0,
            help="seconds without a step before a session is closed",
        ),
        option(
            "--step-timeout",
            type=float,
            default=30.0,
            help="longest wait in seconds for the rest of a route with one step "
            "(a client's shorter budget wins)",
        ),
        option("--max-body-mb", type=int, default=64, help="largest request body, MiB"),
        option(
            "--price",
            type=int,
            default=0,
            help="a free node's price in SHARE wei per position per layer (each prompt and "
            "answer token is a position); a staked node's is its registered one",
        ),
        option("--public-key", help="shown at /info"),
        flag(
            "--plaintext",
            help="free nodes only: serve plain http instead of TLS 1.3 (anyone on the path "
            "then reads and alters what clients send). By default a node serves TLS with a "
            "certificate of its node key (--node-key; a free node creates one there if "
            "missing), which clients pin to the registered key or to the key in --nodes "
            "URL#KEY",
        ),
        flag("--tls", help="deprecated: TLS is the default", hidden=True),
        option(
            "--relay",
            metavar="HOST:PORT",
            help="also be reachable through this relay (`sharedllm relay`), for a node behind "
            "NAT: it gives the node a public URL of its own and sees only ciphertext",
        ),
        option("--threads", type=int, help="torch threads (default: torch's choice)"),
        option(
            "--device",
            type=click.Choice(DEVICES),
            default="auto",
            help="where the span's weights and KV caches live: auto (a CUDA GPU, else "
            "Apple's MPS, else the CPU), cpu, cuda or mps; hidden states travel as float32 "
            "whatever the device",
        ),
        flag(
            "--no-host",
            help="start in this process even when a node host (`sharedllm-node host`) listens",
        ),
        *chain_params(),
        *account_params(),
        option(
            "--node-key",
            type=PATH,
            help="ed25519 key file registered at stake time, or a free node's TLS key "
            "(default: $SHAREDLLM_HOME/nodes/node.ed25519)",
        ),
        option(
            "--transcript-budget-mb",
            type=int,
            default=512,
            help="paid nodes: disk kept for job transcripts until their jobs settle, MiB; a "
            "session whose transcript might not fit is refused",
        ),
        option(
            "--batch-size",
            type=int,
            default=256,
            help="paid nodes: settle served jobs in batches of up to this many answers, "
            "posted in one transaction (a few thousand gas per answer instead of ~560k); 0 "
            "settles each job on its own",
        ),
        option(
            "--batch-age",
            type=float,
            default=300.0,
            help="paid nodes: post a batch anyway once its oldest job has waited this many seconds",
        ),
        # Held served jobs this long before submitting; the integration tests' lever.
        option("--submit-delay", type=float, default=0.0, hidden=True),
        option(
            "--link-delay-ms",
            type=float,
            default=0.0,
            help="TEST/BENCH ONLY: delay every outbound frame by this one-way latency",
        ),
    ]


def parse_size(text: str) -> int:
    match = _SIZE.match(text.strip())
    if not match:
        raise ConfigError(f"--memory-budget: cannot read {text!r} (e.g. 512M, 2G)", field="size")
    scale = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[match[2].upper()]
    return int(float(match[1]) * scale)


def parse_layers(text: str) -> tuple[int, int] | None:
    if text == "auto":
        return None
    match = re.fullmatch(r"(\d+):(\d+)", text)
    if not match or int(match[1]) >= int(match[2]):
        raise ConfigError(f"--layers: expected A:B with A < B, or auto; got {text!r}")
    return int(match[1]), int(match[2])


def available_ram() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def host_nodes(args: Args) -> int:
    from sharedllm.node.host import run_host
    from sharedllm.node.host_wire import check_socket_path, socket_path

    return run_host(check_socket_path(socket_path(args.socket)), args.models_dir, as_json=args.json)


def run_node(args: Args) -> int:
    started = time.perf_counter()
    if not args.no_host:
        from sharedllm.node.host_client import run_in_host
        from sharedllm.node.host_wire import socket_path

        needs_password = args.keystore is not None and args.password_file is None
        status = run_in_host(socket_path(), args.argv, needs_password=needs_password)
        if status is not None:
            return status
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if "torch" not in sys.modules:  # a node host's fork has them already
        print(
            "starting: importing torch and transformers (a few seconds; a node host, "
            "`sharedllm-node host`, keeps them loaded for the next start)",
            file=sys.stderr,
            flush=True,
        )
    # Heavy imports (torch, transformers) happen once, here, not at CLI start-up.
    from sharedllm.model.store import ModelStore
    from sharedllm.node.app import serve
    from sharedllm.node.config import NodeConfig
    from sharedllm.protocol.session_msgs import parse_pinned_url, parse_url

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from sharedllm.model.device import resolve_device

    device = resolve_device(args.device)  # a missing device fails here, in one line
    pinned = [parse_pinned_url(p, "--peer") for p in args.peer]
    peers = tuple(url for url, _ in pinned)
    peer_keys = tuple((url, key) for url, key in pinned if key is not None)
    if args.max_connections_per_peer < 1:
        raise ConfigError(
            "--max-connections-per-peer: must be at least 1", field="max_connections_per_peer"
        )
    for name, value in (("max_batch", args.max_batch), ("batch_positions", args.batch_positions)):
        if value < 1:
            raise ConfigError(f"--{name.replace('_', '-')}: must be at least 1", field=name)
    if not args.reclaim_idle > 0:
        raise ConfigError("--reclaim-idle: must be above 0 seconds", field="reclaim_idle")
    if not 0 <= args.batch_wait_ms <= 1000:
        raise ConfigError("--batch-wait-ms: must be in [0, 1000]", field="batch_wait_ms")
    config = NodeConfig(
        host=args.host,
        port=args.port,
        public_url=parse_url(args.public_url, "--public-url") if args.public_url else None,
        max_sessions=args.max_sessions,
        max_sessions_per_client=args.max_sessions_per_client,
        max_connections_per_peer=args.max_connections_per_peer,
        unstepped_timeout_s=args.unstepped_timeout,
        reclaim_idle_s=args.reclaim_idle,
        cache_budget_bytes=args.cache_mb << 20,
        max_batch=args.max_batch,
        batch_positions=args.batch_positions,
        batch_wait_ms=args.batch_wait_ms,
        idle_timeout_s=args.idle_timeout,
        step_timeout_s=args.step_timeout,
        link_delay_ms=args.link_delay_ms,
        price=args.price,
        json_output=args.json,
        device=str(device),
        client_max_size=args.max_body_mb << 20,
        public_key=args.public_key,
        peers=peers,
        peer_keys=peer_keys,
    )
    if args.tls:
        if args.plaintext:
            raise ConfigError("--tls and --plaintext contradict each other", field="plaintext")
        print("note: --tls is the default now and may be left out", file=sys.stderr)
    tls = not args.plaintext
    relay = None
    if args.relay is not None:
        from sharedllm.node.relay_link import parse_relay

        if not tls:
            raise ConfigError(
                "--relay: a relayed node serves TLS, so that the relay sees only ciphertext; "
                "drop --plaintext",
                field="relay",
            )
        relay = parse_relay(args.relay)
    if config.public_url is not None and config.public_url.startswith("https:") != tls:
        raise ConfigError(
            "--public-url: a node is reached at an https URL, or at http with --plaintext",
            field="public_url",
        )
    store = ModelStore(args.models_dir)
    span = parse_layers(args.layers)
    rebalance = args.rebalance if args.rebalance is not None else span is None
    if args.rebalance_interval <= 0:
        raise ConfigError("--rebalance-interval: expected seconds > 0", field="rebalance_interval")
    if args.move_drain <= 0:
        raise ConfigError("--move-drain: expected seconds > 0", field="move_drain")
    admission, background, transcripts, handoff, ledger = None, [], None, None, None
    registration = None
    link_key, registered_endpoint = None, None
    if args.dev_account is not None or args.keystore is not None:
        from dataclasses import replace

        from sharedllm.model.device import hardware_class
        from sharedllm.node.paid_setup import check_span, paid_node

        node = paid_node(args, hardware_class(device))
        reg = node.registered
        span = check_span(reg, span)
        manifest = store.manifest(args.model or reg.model_id)
        if manifest.model_id != reg.model_id:
            raise ConfigError(
                f"--model {manifest.model_id} is not the registered model {reg.model_id}",
                code="ModelMismatch",
            )
        config = replace(
            config, price=reg.price_per_token, public_key=reg.pubkey, address=reg.address
        )
        if rebalance:
            from sharedllm.node.move_registration import StakedRegistration

            settler = node.settler
            registration = StakedRegistration(settler.chain, settler.account)
        admission, background = node.admission, [node.settler.run]
        transcripts, handoff, ledger = node.transcripts, node.handoff, node.settler.ledger
        link_key = node.key
        registered_endpoint = reg.endpoint if relay is not None else None
    else:
        manifest = store.manifest(args.model)
        if tls:
            from dataclasses import replace

            from sharedllm.chain.node_keys import (
                default_node_key_path,
                load_or_create_node_key,
                public_key_bytes32,
            )

            link_key = load_or_create_node_key(args.node_key or default_node_key_path())
            config = replace(config, public_key=public_key_bytes32(link_key))
    if span is None:
        span = asyncio.run(_auto_span(args, store, manifest, config))
    asyncio.run(_fetch_shards(store, manifest, span, config))
    print(
        f"starting: layers {span[0]}:{span[1]} of {manifest.name} ({manifest.model_id[:10]}) "
        f"on {device}: loading the weights, then measuring a few steps",
        file=sys.stderr,
        flush=True,
    )
    if rebalance:
        config = replace_config(
            config, rebalance_interval_s=args.rebalance_interval, move_drain_s=args.move_drain
        )
    asyncio.run(
        serve(
            config, store, manifest, span[0], span[1], started_at=started,
            admission=admission, background=background, transcripts=transcripts,
            handoff=handoff, batches=ledger, wrap_runner=args.faults.wrap_runner,
            link_key=link_key, relay=relay, registered_endpoint=registered_endpoint,
            registration=registration,
        )
    )  # fmt: skip
    return 0


async def _auto_span(args, store, manifest, config) -> tuple[int, int]:
    from sharedllm.model.precision import estimated_layer_bytes
    from sharedllm.peers.http import PeerClient
    from sharedllm.peers.probe import probe_all
    from sharedllm.placement.span_choice import choose_span, layers_that_fit

    budget = parse_size(args.memory_budget) if args.memory_budget else available_ram() // 2
    first = manifest.layer_shards[0]
    if store.has_shard(first):
        layer_bytes = store.shard_path(first).stat().st_size
    else:
        layer_bytes = estimated_layer_bytes(manifest.config, manifest.dtype)
    count = layers_that_fit(budget, layer_bytes, config.cache_budget_bytes, manifest.num_layers)
    async with PeerClient(trust=config.peer_trust()) as peers:
        urls = list(dict.fromkeys(config.peers))
        found = await probe_all(peers, urls)
    spans = [(c.info.start, c.info.end) for c in found if c.info.model_id == manifest.model_id]
    return choose_span(manifest.num_layers, count, spans)


async def _fetch_shards(store, manifest, span, config) -> None:
    """The span's missing shards, from the peers, with a bar (a line per shard off a
    terminal); serve then finds them all here."""
    from sharedllm.model.span import SpanRunner
    from sharedllm.node.shard_fetch import Fetched, fetch_missing_shards
    from sharedllm.peers.http import PeerClient

    missing = SpanRunner.missing_shards(store, manifest, *span)
    if not missing:
        return
    with Progress(f"fetching {len(missing)} layer shards", len(missing)) as progress:

        def show(step: Fetched) -> None:
            progress.step(
                step.done,
                f"layer {step.layer} ({format_size(step.size)}) from {step.peer}; "
                f"{step.done}/{step.total} layers, {format_size(step.bytes_so_far)}",
            )

        async with PeerClient(trust=config.peer_trust()) as peers:
            start, end = span
            urls = list(dict.fromkeys(config.peers))
            await fetch_missing_shards(peers, store, manifest, start, end, urls, show)


@dataclass(frozen=True)
class NodeFaults:
    """Parts a test hands a node (``sharedllm.testing.faulty_node``); a node as run has none:
    ``wrap_runner`` wraps the span runner (a cheater), ``after_submit`` runs once a result
    submission is mined, before the ledger records it (a crash there), ``claim`` gives the
    tokens to submit for a job instead of those served (an over-charger)."""

    wrap_runner: Callable[[Any], Any] | None = None
    after_submit: Callable[[str], None] | None = None
    claim: Callable[[int, dict], int] | None = None


def main(argv: Sequence[str] | None = None, faults: NodeFaults | None = None) -> int:
    """``sharedllm-node``: its registration commands and ``run``/``host``."""
    from sharedllm.cli_base import program, run
    from sharedllm.node import registry_cli

    group = program(
        "sharedllm-node",
        "Run a SharedLLM node: stake on the registry and serve a span of a model's layers.",
    )
    registry_cli.register(group)
    register(group)
    return run(group, argv, faults=faults or NodeFaults())
