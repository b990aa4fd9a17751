"""``sharedllm-node stake|update|unstake|withdraw|status``: the node's registration on the
registry, as commands (``registry_commands`` runs them)."""

from __future__ import annotations

from pathlib import Path

import click

from sharedllm.chain.cli_common import account_params, chain_params
from sharedllm.cli_base import command, option, yes_flag

COMMANDS = "sharedllm.node.registry_commands"


def register(group: click.Group) -> None:
    """Add ``stake``, ``update``, ``unstake``, ``withdraw`` and ``status``."""
    chain = [*chain_params(), *account_params()]
    group.add_command(
        command(
            "stake",
            f"{COMMANDS}:stake",
            "Stake SHARE and register (or top up) this node.",
            [
                option(
                    "--amount",
                    required=True,
                    help='SHARE to stake, decimals allowed ("150", "0.5")',
                ),
                *config_params(),
                *chain,
            ],
        )  # fmt: skip
    )
    group.add_command(
        command(
            "update",
            f"{COMMANDS}:update",
            "Change the registered endpoint, key, model, span or price.\n\n"
            "Model, span and price change at most once per terms lock (the market's longest "
            "job lifetime), so that the jobs sent under the old terms are still paid.",
            [*config_params(), *chain],
        )
    )
    group.add_command(
        command(
            "unstake",
            f"{COMMANDS}:unstake",
            "Start unbonding; the node leaves the active list at once.\n\n"
            "Asks for confirmation on a terminal unless --yes.",
            [*chain, yes_flag()],
        )
    )
    group.add_command(
        command(
            "withdraw",
            f"{COMMANDS}:withdraw",
            "After unbonding, take the stake back.\n\n"
            "Asks for confirmation on a terminal unless --yes; --wait waits out the "
            "unbonding delay, showing the time left.",
            [
                *chain,
                yes_flag(),
                option("--wait", is_flag=True, help="wait until the unbonding delay is over"),
            ],
        )
    )
    group.add_command(
        command(
            "status",
            f"{COMMANDS}:status",
            "Show the node's registration, stake and wallet.",
            [*chain, option("--address", help="any node address (default: the account's)")],
        )
    )


def config_params() -> list[click.Parameter]:
    """What a node registers: endpoint, key, model, span and price."""
    return [
        option("--endpoint", help="URL where clients reach this node"),
        option("--pubkey", help="ed25519 public key, 0x + 64 hex"),
        option(
            "--node-key",
            type=click.Path(path_type=Path, dir_okay=False),
            help="ed25519 key file (created if missing; default "
            "$SHAREDLLM_HOME/nodes/node.ed25519)",
        ),
        option(
            "--model-id", help="model id, 0x + 64 hex (default: the local model store's default)"
        ),
        option("--layers", help="span of layers served, START:END (half-open)"),
        option(
            "--hardware",
            help="the class of device the node serves on, as `sharedllm-node run` reports it: "
            "cpu, mps or cuda-smNN (default: the registered one, else this machine's with "
            "--device auto); verifiers pick the tolerance rule for its work by it",
        ),
        option(
            "--price",
            help="price in SHARE per position per layer (each prompt and answer token is a "
            "position), decimals allowed",
        ),
    ]
