"""Command-line commands of the chain part: money for ``sharedllm``.

Amounts are decimal SHARE ("150", "0.5"); ``--json`` prints amounts as decimal wei strings.
"""

from __future__ import annotations

from pathlib import Path

import click

from sharedllm.chain.cli_common import account_params, chain_params
from sharedllm.cli_base import argument, command, json_flag, option, yes_flag

COMMANDS = "sharedllm.chain.client_commands"


def register_client(group: click.Group) -> None:
    """Add ``devnet``, ``deposit``, ``withdraw``, ``balance``, ``faucet`` and ``account``."""
    money = [*chain_params(), *account_params()]
    group.add_command(
        command(
            "devnet",
            f"{COMMANDS}:devnet",
            "Run a local chain with the contracts deployed, until Ctrl-C.",
            [
                option("--port", type=int, default=8545, help="RPC port"),
                option(
                    "--deployment",
                    type=click.Path(path_type=Path, dir_okay=False),
                    help="where to write the deployment file "
                    "(default: $SHAREDLLM_HOME/deployment.json)",
                ),
                json_flag("print the deployment as JSON"),
            ],
        )
    )
    group.add_command(
        command(
            "deposit",
            f"{COMMANDS}:deposit",
            "Move SHARE from your wallet into your job escrow.\n\n"
            'AMOUNT is in SHARE, decimals allowed ("150", "0.5"). A deposit above 100 SHARE '
            "asks for confirmation on a terminal unless --yes.",
            [argument("amount"), *money, yes_flag()],
        )
    )
    group.add_command(
        command(
            "withdraw",
            f"{COMMANDS}:withdraw",
            "Take SHARE out of escrow: `request AMOUNT`, then `execute` after the delay.\n\n"
            "Both ask for confirmation on a terminal unless --yes; `execute --wait` waits "
            "out the delay, showing the time left.",
            [
                argument("action", type=click.Choice(["request", "execute"])),
                argument("amount", required=False),
                *money,
                yes_flag(),
                option("--wait", is_flag=True, help="`execute`: wait until the delay is over"),
            ],
        )
    )
    group.add_command(
        command(
            "balance",
            f"{COMMANDS}:balance",
            "Show wallet SHARE, escrow and any pending withdrawal.",
            [*money, option("--address", help="any address (default: the account's)")],
        )
    )
    group.add_command(
        command(
            "faucet",
            f"{COMMANDS}:faucet",
            "Mint SHARE on a devnet.",
            [
                argument("amount"),
                *money,
                option("--address", help="recipient (default: the account's)"),
            ],
        )
    )
    group.add_command(
        command(
            "account",
            f"{COMMANDS}:account",
            "Create (`new`) or list (`list`) encrypted keystores.\n\n"
            "`new` asks for the password twice, hidden, unless --password-file or "
            "$SHAREDLLM_PASSWORD gives it.",
            [
                argument("action", type=click.Choice(["new", "list"])),
                option(
                    "--keystore",
                    type=click.Path(path_type=Path, dir_okay=False),
                    help="where to write the new keystore "
                    "(default: $SHAREDLLM_HOME/keystores/ADDRESS.json)",
                ),
                option(
                    "--password-file",
                    type=click.Path(path_type=Path, dir_okay=False),
                    help="file holding the password",
                ),
                json_flag(),
            ],
        )
    )
