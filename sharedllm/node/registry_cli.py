"""``sharedllm-node stake|update|unstake|withdraw|status``: the node's registration on the
registry, as commands (``registry_commands`` runs them)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sharedllm.chain.cli import chain_parser, lazy_command
from sharedllm.chain.cli_common import AMOUNT_HELP


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``stake``, ``update``, ``unstake``, ``withdraw`` and ``status``."""
    p = chain_parser(sub, "stake", "stake SHARE and register (or top up) this node")
    p.add_argument("--amount", required=True, help=AMOUNT_HELP)
    add_config_options(p)
    p.set_defaults(func=lazy_command("sharedllm.node.registry_commands", "stake"))

    p = chain_parser(sub, "update", "change the registered endpoint, key, model, span or price")
    add_config_options(p)
    p.set_defaults(func=lazy_command("sharedllm.node.registry_commands", "update"))

    p = chain_parser(sub, "unstake", "start unbonding; the node leaves the active list at once")
    p.set_defaults(func=lazy_command("sharedllm.node.registry_commands", "unstake"))

    p = chain_parser(sub, "withdraw", "after unbonding, take the stake back")
    p.set_defaults(func=lazy_command("sharedllm.node.registry_commands", "withdraw"))

    p = chain_parser(sub, "status", "show the node's registration, stake and wallet")
    p.add_argument("--address", help="any node address (default: the account's)")
    p.set_defaults(func=lazy_command("sharedllm.node.registry_commands", "status"))


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """What a node registers: endpoint, key, model, span and price."""
    parser.add_argument("--endpoint", help="URL where clients reach this node")
    parser.add_argument("--pubkey", help="ed25519 public key, 0x + 64 hex")
    parser.add_argument(
        "--node-key",
        type=Path,
        help="ed25519 key file (created if missing; default $SHAREDLLM_HOME/nodes/node.ed25519)",
    )
    parser.add_argument(
        "--model-id", help="model id, 0x + 64 hex (default: the local model store's default)"
    )
    parser.add_argument("--layers", help="span of layers served, START:END (half-open)")
    parser.add_argument(
        "--hardware",
        help="the class of device the node serves on, as `sharedllm-node run` reports it: "
        "cpu, mps or cuda-smNN (default: the registered one, else this machine's with "
        "--device auto); verifiers pick the tolerance rule for its work by it",
    )
    parser.add_argument(
        "--price",
        help="price in SHARE per position per layer (each prompt and answer token is a "
        "position), decimals allowed",
    )
