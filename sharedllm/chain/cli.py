"""Command-line commands of the chain part: money for ``sharedllm``, stake for ``sharedllm-node``.

Amounts are decimal SHARE ("150", "0.5"); ``--json`` prints amounts as decimal wei strings.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path

from sharedllm.chain.cli_common import AMOUNT_HELP, add_account_options, add_chain_options


def lazy_command(module: str, name: str) -> Callable[[argparse.Namespace], int | None]:
    """The command ``<module>.<name>``, imported when it runs: building the parser stays
    free of web3 and eth-account, whose import costs seconds."""

    def run(args: argparse.Namespace) -> int | None:
        status: int | None = getattr(importlib.import_module(module), name)(args)
        return status

    return run


def chain_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help: str,
    account: bool = True,
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help)
    add_chain_options(parser)
    if account:
        add_account_options(parser)
    return parser


def register_client(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``devnet``, ``deposit``, ``withdraw``, ``balance``, ``faucet`` and ``account``."""
    p = sub.add_parser("devnet", help="run a local chain with the contracts deployed")
    p.add_argument("--port", type=int, default=8545, help="RPC port (default 8545)")
    p.add_argument("--deployment", type=Path, help="where to write the deployment file")
    p.add_argument("--json", action="store_true", help="print the deployment as JSON")
    p.set_defaults(func=lazy_command("sharedllm.chain.client_commands", "devnet"))

    p = chain_parser(sub, "deposit", "move SHARE from your wallet into your job escrow")
    p.add_argument("amount", help=AMOUNT_HELP)
    p.set_defaults(func=lazy_command("sharedllm.chain.client_commands", "deposit"))

    p = chain_parser(sub, "withdraw", "take SHARE out of escrow: `request AMOUNT`, later `execute`")
    p.add_argument("action", choices=["request", "execute"])
    p.add_argument("amount", nargs="?", help=AMOUNT_HELP + "; for `request`")
    p.set_defaults(func=lazy_command("sharedllm.chain.client_commands", "withdraw"))

    p = chain_parser(sub, "balance", "show wallet SHARE, escrow and any pending withdrawal")
    p.add_argument("--address", help="any address (default: the account's)")
    p.set_defaults(func=lazy_command("sharedllm.chain.client_commands", "balance"))

    p = chain_parser(sub, "faucet", "mint SHARE on a devnet")
    p.add_argument("amount", help=AMOUNT_HELP)
    p.add_argument("--address", help="recipient (default: the account's)")
    p.set_defaults(func=lazy_command("sharedllm.chain.client_commands", "faucet"))

    p = sub.add_parser("account", help="create or list encrypted keystores")
    p.add_argument("action", choices=["new", "list"])
    p.add_argument("--keystore", type=Path, help="where to write the new keystore")
    p.add_argument("--password-file", type=Path, help="file holding the password")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=lazy_command("sharedllm.chain.client_commands", "account"))
