"""``sharedllm relay``: give nodes behind NAT a public address, seeing only ciphertext."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click

from sharedllm.cli_base import Args, command, json_flag, option, ready_line
from sharedllm.errors import ConfigError
from sharedllm.paths import home


def register(group: click.Group) -> None:
    """Add ``relay``."""
    group.add_command(
        command(
            "relay",
            "sharedllm.relay.cli:run_relay",
            "Relay connections to nodes that cannot accept them (behind NAT).\n\n"
            "Nodes started with `sharedllm-node run --relay HOST:PORT` register here with "
            "their node key and get a public port of their own; clients' connections to it "
            "are copied to the node unread (their TLS ends at the node).",
            [
                option("--host", default="0.0.0.0", help="address to listen on"),
                option("--port", type=int, default=7000, help="the port nodes register at"),
                option(
                    "--public-host", help="the host clients reach this relay at (default: --host)"
                ),
                option(
                    "--ports", default="40000-40999", help="public ports to give nodes, FIRST-LAST"
                ),
                option(
                    "--max-per-node",
                    type=int,
                    default=256,
                    help="client connections per node at once",
                ),
                option(
                    "--db",
                    type=click.Path(path_type=Path, dir_okay=False),
                    help="which port is whose (default: $SHAREDLLM_HOME/relay/ports.db)",
                ),
                json_flag("print the ready line as one JSON object"),
            ],
        )  # fmt: skip
    )


def _ports(value: str) -> range:
    first, sep, last = value.partition("-")
    if not sep or not first.isdigit() or not last.isdigit():
        raise ConfigError(f"--ports: expected FIRST-LAST, got {value!r}", field="ports")
    lo, hi = int(first), int(last)
    if not 1 <= lo <= hi <= 65535:
        raise ConfigError(f"--ports: {value} is not a range of ports", field="ports")
    return range(lo, hi + 1)


def run_relay(args: Args) -> int:
    from sharedllm.relay.server import PortBook, Relay
    from sharedllm.stop_signals import stop_event

    kind = getattr(args, "relay_class", None) or Relay  # a test's tampering relay
    ports = _ports(args.ports)
    public = args.public_host or args.host
    if public in ("0.0.0.0", "::"):
        raise ConfigError(
            "--public-host: name the address clients reach this relay at", field="public_host"
        )
    if args.max_per_node < 1:
        raise ConfigError("--max-per-node: must be at least 1", field="max_per_node")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def main() -> None:
        book = PortBook(args.db or home() / "relay" / "ports.db", ports)
        relay = kind(args.host, args.port, public, ports, book, max_per_node=args.max_per_node)
        port = await relay.start()
        stop = stop_event()
        fields = {"public": public, "ports": f"{ports.start}-{ports.stop - 1}"}
        line = ready_line(f"{args.host}:{port}", fields, as_json=args.json, kind="relay")
        print(line, flush=True)
        try:
            await stop.wait()
        finally:
            await relay.close()

    asyncio.run(main())
    return 0
