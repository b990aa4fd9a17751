"""Command-line commands of the chain part: money for ``sharedllm``, stake for ``sharedllm-node``.

Amounts are decimal SHARE ("150", "0.5"); ``--json`` prints amounts as decimal wei strings.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path

from sharedllm.chain.cli_common import AMOUNT_HELP, add_account_options, add_chain_options


def _command(module: str, name: str) -> Callable[[argparse.Namespace], int | None]:
    """The command ``sharedllm.chain.<module>.<name>``, imported when it runs: building the
    parser stays free of web3 and eth-account, whose import costs seconds."""

    def run(args: argparse.Namespace) -> int | None:
        return getattr(importlib.import_module(f"sharedllm.chain.{module}"), name)(args)

    return run


def _chain_parser(
    sub: argparse._SubParsersAction, name: str, help: str, account: bool = True
) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help, description=help)
    add_chain_options(parser)
    if account:
        add_account_options(parser)
    return parser


def register_client(sub: argparse._SubParsersAction) -> None:
    """Add ``devnet``, ``deposit``, ``withdraw``, ``balance``, ``faucet`` and ``account``."""
    p = sub.add_parser("devnet", help="run a local chain with the contracts deployed")
    p.add_argument("--port", type=int, default=8545, help="RPC port (default 8545)")
    p.add_argument("--deployment", type=Path, help="where to write the deployment file")
    p.add_argument("--json", action="store_true", help="print the deployment as JSON")
    p.set_defaults(func=_command("client_commands", "devnet"))

    p = _chain_parser(sub, "deposit", "move SHARE from your wallet into your job escrow")
    p.add_argument("amount", help=AMOUNT_HELP)
    p.set_defaults(func=_command("client_commands", "deposit"))

    p = _chain_parser(
        sub, "withdraw", "take SHARE out of escrow: `request AMOUNT`, later `execute`"
    )
    p.add_argument("action", choices=["request", "execute"])
    p.add_argument("amount", nargs="?", help=AMOUNT_HELP + "; for `request`")
    p.set_defaults(func=_command("client_commands", "withdraw"))

    p = _chain_parser(sub, "balance", "show wallet SHARE, escrow and any pending withdrawal")
    p.add_argument("--address", help="any address (default: the account's)")
    p.set_defaults(func=_command("client_commands", "balance"))

    p = _chain_parser(sub, "faucet", "mint SHARE on a devnet")
    p.add_argument("amount", help=AMOUNT_HELP)
    p.add_argument("--address", help="recipient (default: the account's)")
    p.set_defaults(func=_command("client_commands", "faucet"))

    p = sub.add_parser("account", help="create or list encrypted keystores")
    p.add_argument("action", choices=["new", "list"])
    p.add_argument("--keystore", type=Path, help="where to write the new keystore")
    p.add_argument("--password-file", type=Path, help="file holding the password")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_command("client_commands", "account"))


def register_node(sub: argparse._SubParsersAction) -> None:
    """Add ``stake``, ``update``, ``unstake``, ``withdraw`` and ``status``."""
    p = _chain_parser(sub, "stake", "stake SHARE and register (or top up) this node")
    p.add_argument("--amount", required=True, help=AMOUNT_HELP)
    add_config_options(p)
    p.set_defaults(func=_command("node_commands", "stake"))

    p = _chain_parser(sub, "update", "change the registered endpoint, key, model, span or price")
    add_config_options(p)
    p.set_defaults(func=_command("node_commands", "update"))

    p = _chain_parser(sub, "unstake", "start unbonding; the node leaves the active list at once")
    p.set_defaults(func=_command("node_commands", "unstake"))

    p = _chain_parser(sub, "withdraw", "after unbonding, take the stake back")
    p.set_defaults(func=_command("node_commands", "withdraw"))

    p = _chain_parser(sub, "status", "show the node's registration, stake and wallet")
    p.add_argument("--address", help="any node address (default: the account's)")
    p.set_defaults(func=_command("node_commands", "status"))


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
        "--price",
        help="price in SHARE per position per layer (each prompt and answer token is a "
        "position), decimals allowed",
    )
