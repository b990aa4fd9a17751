"""Entry points of the three programs; each part of the package adds its own commands."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import click

from sharedllm.cli_base import entry, program, run


def sharedllm_program() -> click.Group:
    from sharedllm.chain import cli as chain_cli
    from sharedllm.client import cli as client_cli
    from sharedllm.client import network_cli
    from sharedllm.gateway import cli as gateway_cli
    from sharedllm.model import cli as model_cli
    from sharedllm.relay import cli as relay_cli

    group = program(
        "sharedllm",
        "Use the SharedLLM network: run a devnet, manage models, pay for and run generations.",
    )
    for register in (
        chain_cli.register_client,
        model_cli.register,
        client_cli.register,
        network_cli.register,
        gateway_cli.register,
        relay_cli.register,
    ):
        register(group)
    return group


def verifier_program() -> click.Group:
    from sharedllm.verifier import cli as verifier_cli

    group = program(
        "sharedllm-verifier",
        "Spot-check the network's work by redundant execution and challenge cheaters.",
    )
    verifier_cli.register(group)
    return group


def sharedllm_main(argv: Sequence[str] | None = None) -> int:
    return run(sharedllm_program(), argv)


def node_main(argv: Sequence[str] | None = None) -> int:
    from sharedllm.node.cli import main

    return main(argv)


def verifier_main(
    argv: Sequence[str] | None = None, fault: Callable[[str], None] | None = None
) -> int:
    """``fault``: a test's fault point for the service (``sharedllm.testing.faulty_verifier``)."""
    return run(verifier_program(), argv, fault=fault)


sharedllm = entry(sharedllm_main)
sharedllm_node = entry(node_main)
sharedllm_verifier = entry(verifier_main)
