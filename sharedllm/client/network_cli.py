"""``sharedllm nodes`` (the network, from the registry) and ``sharedllm jobs`` (your jobs)."""

from __future__ import annotations

import argparse
import asyncio
import math

from sharedllm.chain.cli_common import (
    add_account_options,
    add_chain_options,
    address_of,
    chain_command,
    emit,
    open_chain,
)
from sharedllm.errors import ConfigError, ProtocolError

MAX_PROBE_TIMEOUT_S = 60.0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``nodes`` and ``jobs``."""
    about = "list the active nodes of the registry, probe them, and show layer coverage"
    p = sub.add_parser("nodes", help=about, description=about)
    add_chain_options(p)
    p.add_argument("--model", help="only nodes registered for this model id")
    p.add_argument(
        "--timeout", default="2", help="seconds to wait for each node's /info (default 2)"
    )
    p.add_argument("--no-probe", action="store_true", help="read the chain only")
    p.add_argument("--layers", help="the model's layer count (default: local manifest, else /info)")
    p.set_defaults(func=nodes)

    about = "list the jobs you signed, with their status on-chain"
    p = sub.add_parser(
        "jobs",
        help=about,
        description=about + "; without an account option, every job in the local job book",
    )
    add_chain_options(p)
    add_account_options(p)
    p.add_argument("--address", help="any client address (default: the account's)")
    p.add_argument("--limit", help="show only the latest N jobs")
    p.set_defaults(func=jobs)


@chain_command
def nodes(args: argparse.Namespace) -> int:
    from sharedllm.client.network_text import network_lines
    from sharedllm.client.network_view import read_network

    model_id = _model(args.model)
    timeout = None if args.no_probe else _seconds(args.timeout)
    layers = _positive(args.layers, "layers") if args.layers else None
    chain = open_chain(args)
    view = asyncio.run(read_network(chain, model_id, probe_timeout=timeout, num_layers=layers))
    emit(args, view.to_json(), network_lines(view))
    return 0


@chain_command
def jobs(args: argparse.Namespace) -> int:
    from sharedllm.client.job_book import JobBook
    from sharedllm.client.jobs_view import job_lines, refresh

    limit = _positive(args.limit, "limit") if args.limit else None
    chain = open_chain(args)
    client = (
        address_of(args, chain) if (args.address or args.keystore or args.dev_account) else None
    )
    with JobBook() as book:
        booked = book.list(client)
    lines = refresh(chain, booked)
    if limit is not None:
        lines = lines[-limit:]
    emit(
        args,
        {"client": client, "jobs": [line.to_json() for line in lines]},
        job_lines(lines, client),
    )
    return 0


def _model(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        from sharedllm.protocol.types import parse_model_id

        return parse_model_id(text.strip().lower(), "--model")
    except ProtocolError as exc:  # the option, not a peer, was wrong
        raise ConfigError(exc.message, field="model") from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError("--timeout: expected a number of seconds", field="timeout") from None
    if not math.isfinite(value) or not 0 < value <= MAX_PROBE_TIMEOUT_S:
        raise ConfigError(
            f"--timeout: expected 0 < seconds <= {MAX_PROBE_TIMEOUT_S:g}", field="timeout"
        )
    return value


def _positive(text: str, field: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise ConfigError(f"--{field}: expected a whole number >= 1", field=field)
    return int(text)
