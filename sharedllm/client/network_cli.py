"""``sharedllm nodes`` (the network, from the registry) and ``sharedllm jobs`` (your jobs)."""

from __future__ import annotations

import asyncio
import math
import sys

import click

from sharedllm.chain.cli_common import (
    account_params,
    address_of,
    chain_command,
    chain_params,
    emit,
    open_chain,
)
from sharedllm.cli_base import Args, Progress, command, flag, option
from sharedllm.errors import ConfigError, ProtocolError

MAX_PROBE_TIMEOUT_S = 60.0


def register(group: click.Group) -> None:
    """Add ``nodes`` and ``jobs``."""
    group.add_command(
        command(
            "nodes",
            "sharedllm.client.network_cli:nodes",
            "List the active nodes of the registry, probe them, and show layer coverage.",
            [
                *chain_params(),
                option("--model", help="only nodes registered for this model id"),
                option("--timeout", default="2", help="seconds to wait for each node's /info"),
                flag("--no-probe", help="read the chain only"),
                option(
                    "--layers",
                    help="the model's layer count (default: the local manifest's, else /info's)",
                ),
            ],
        )
    )
    group.add_command(
        command(
            "jobs",
            "sharedllm.client.network_cli:jobs",
            "List the jobs you signed, with their status on-chain.\n\n"
            "Without an account option, every job in the local job book.",
            [
                *chain_params(),
                *account_params(),
                option("--address", help="any client address (default: the account's)"),
                option("--limit", help="show only the latest N jobs"),
                flag(
                    "--wait",
                    help="wait until every job shown is settled (finalized, upheld, expired, "
                    "refunded or unfunded), showing what the others wait for",
                ),
            ],
        )
    )


@chain_command
def nodes(args: Args) -> int:
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
def jobs(args: Args) -> int:
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
    if args.wait:
        lines = _wait_settled(chain, lines)
    emit(
        args,
        {"client": client, "jobs": [line.to_json() for line in lines]},
        job_lines(lines, client),
    )
    return 0


def _wait_settled(chain, lines):  # noqa: ANN001, ANN202 - Chain, list[JobLine]
    """Refresh ``lines`` until every job is settled, showing how many are and what the rest
    wait for (a bar on a terminal, a line per change elsewhere)."""
    import time

    from sharedllm.client.jobs_view import SETTLED, refresh, waiting_note

    window = chain.market.params()["challengeWindow"]
    terminal = sys.stderr.isatty()
    shown: tuple[list[str], float] | None = None
    with Progress("jobs settled", len(lines)) as progress:
        while True:
            done = sum(line.status in SETTLED for line in lines)
            statuses = sorted(line.status for line in lines)
            # Off a terminal: a line when a job moves on, else one a minute.
            if terminal or shown is None or shown[0] != statuses or time.monotonic() > shown[1]:
                progress.step(done, waiting_note(lines, window, chain.now()))
                shown = (statuses, time.monotonic() + 60)
            if done == len(lines):
                return lines
            time.sleep(1.0 if terminal else 5.0)
            lines = refresh(chain, [line.booked for line in lines])


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
