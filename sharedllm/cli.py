"""Entry points of the three programs; each part of the package adds its own commands."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from sharedllm.cli_base import build, run


def sharedllm_main(argv: Sequence[str] | None = None) -> int:
    from sharedllm.chain import cli as chain_cli
    from sharedllm.client import cli as client_cli
    from sharedllm.client import network_cli
    from sharedllm.gateway import cli as gateway_cli
    from sharedllm.model import cli as model_cli
    from sharedllm.relay import cli as relay_cli

    parser = build(
        "sharedllm",
        "Use the SharedLLM network: run a devnet, manage models, pay for and run generations.",
        [
            chain_cli.register_client,
            model_cli.register,
            client_cli.register,
            network_cli.register,
            gateway_cli.register,
            relay_cli.register,
        ],
    )
    return run(parser, argv)


def node_main(argv: Sequence[str] | None = None) -> int:
    from sharedllm.node.cli import main

    return main(argv)


def verifier_main(
    argv: Sequence[str] | None = None, fault: Callable[[str], None] | None = None
) -> int:
    """``fault``: a test's fault point for the service (``sharedllm.testing.faulty_verifier``)."""
    from sharedllm.verifier import cli as verifier_cli

    parser = build(
        "sharedllm-verifier",
        "Spot-check the network's work by redundant execution and challenge cheaters.",
        [verifier_cli.register],
    )
    parser.set_defaults(fault=fault)
    return run(parser, argv)


def _entry(main: Callable[[Sequence[str] | None], int]) -> Callable[[], None]:
    return lambda: sys.exit(main(None))


sharedllm = _entry(sharedllm_main)
sharedllm_node = _entry(node_main)
sharedllm_verifier = _entry(verifier_main)
