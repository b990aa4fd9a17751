"""Entry points of the three programs; each part of the package adds its own commands."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from sharedllm import __version__
from sharedllm.errors import SharedLLMError

Register = Callable[[argparse._SubParsersAction], None]


def _build(prog: str, description: str, registers: Sequence[Register]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in registers:
        register(sub)
    return parser


def _run(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what a node host is handed
    try:
        return int(args.func(args) or 0)
    except SharedLLMError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"error": exc.to_json()}), file=sys.stderr)
        else:
            print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def sharedllm_main(argv: Sequence[str] | None = None) -> int:
    from sharedllm.chain import cli as chain_cli
    from sharedllm.client import cli as client_cli
    from sharedllm.client import network_cli
    from sharedllm.gateway import cli as gateway_cli
    from sharedllm.model import cli as model_cli

    parser = _build(
        "sharedllm",
        "Use the SharedLLM network: run a devnet, manage models, pay for and run generations.",
        [
            chain_cli.register_client,
            model_cli.register,
            client_cli.register,
            network_cli.register,
            gateway_cli.register,
        ],
    )
    return _run(parser, argv)


def node_main(argv: Sequence[str] | None = None) -> int:
    from sharedllm.chain import cli as chain_cli
    from sharedllm.node import cli as node_cli

    parser = _build(
        "sharedllm-node",
        "Run a SharedLLM node: stake on the registry and serve a span of a model's layers.",
        [chain_cli.register_node, node_cli.register],
    )
    return _run(parser, argv)


def verifier_main(argv: Sequence[str] | None = None) -> int:
    from sharedllm.verifier import cli as verifier_cli

    parser = _build(
        "sharedllm-verifier",
        "Spot-check the network's work by redundant execution and challenge cheaters.",
        [verifier_cli.register],
    )
    return _run(parser, argv)


def _entry(main: Callable[[Sequence[str] | None], int]) -> Callable[[], None]:
    return lambda: sys.exit(main(None))


sharedllm = _entry(sharedllm_main)
sharedllm_node = _entry(node_main)
sharedllm_verifier = _entry(verifier_main)
