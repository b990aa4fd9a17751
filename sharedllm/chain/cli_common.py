"""Options and plumbing every chain command shares: RPC, deployment, signer, output.

Values with a meaning (amounts, addresses, spans) are parsed inside the commands, so that a
bad one becomes the program's ``error: [CODE] ...`` naming the problem.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sharedllm import paths
from sharedllm.cli_base import Args, Exclusive, Progress, json_flag, option
from sharedllm.errors import ChainError, ConfigError, KeystoreError, ProtocolError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from sharedllm.chain.connection import Chain

# web3 and eth-account are imported by the functions that use them, not here: every
# program is built from these options, and those imports cost seconds.

BLOCK_WAIT_S = 30  # past the time, how long a wait looks for a newer block
AMOUNT_HELP = 'in SHARE, decimals allowed ("150", "0.5")'


def chain_params() -> list[click.Parameter]:
    """``--rpc-url``, ``--deployment`` and ``--json``."""
    return [
        option(
            "--rpc-url",
            help="JSON-RPC URL (default: $SHAREDLLM_RPC_URL, the deployment file's, or "
            f"{paths.DEFAULT_RPC_URL})",
        ),
        option(
            "--deployment",
            type=click.Path(path_type=Path, dir_okay=False),
            help="deployment file (default: $SHAREDLLM_DEPLOYMENT or "
            "$SHAREDLLM_HOME/deployment.json)",
        ),
        json_flag(),
    ]


def account_params() -> list[click.Parameter]:
    """``--keystore`` or ``--dev-account``, and ``--password-file``."""
    return [
        Exclusive(
            "--keystore",
            type=click.Path(path_type=Path, dir_okay=False),
            excludes=["dev_account"],
            help="encrypted JSON keystore of the account",
        ),
        Exclusive(
            "--dev-account",
            metavar="N",
            excludes=["keystore"],
            help="anvil dev account N (0..19); devnet (chain 31337) only",
        ),
        option(
            "--password-file",
            type=click.Path(path_type=Path, dir_okay=False),
            help="file holding the keystore password (else $SHAREDLLM_PASSWORD, else a "
            "hidden prompt)",
        ),
    ]


def open_chain(args: Args) -> Chain:
    from sharedllm.chain.connection import connect
    from sharedllm.chain.deployment import Deployment

    deployment = Deployment.load(args.deployment)
    rpc_url = (
        args.rpc_url
        or os.environ.get("SHAREDLLM_RPC_URL")
        or deployment.rpc_url
        or paths.DEFAULT_RPC_URL
    )
    return connect(rpc_url, deployment)


def signer(args: Args, chain: Chain) -> LocalAccount:
    from sharedllm.chain.accounts import (
        dev_account,
        load_keystore,
        read_password,
        require_dev_chain,
    )

    if args.dev_account is not None:
        try:
            index = int(args.dev_account)
        except ValueError:
            raise ConfigError(
                "--dev-account: expected a number 0..19", field="dev_account"
            ) from None
        require_dev_chain(chain.chain_id)
        return dev_account(index)
    if args.keystore is not None:
        return load_keystore(args.keystore, read_password(args.password_file))
    raise KeystoreError("no account: pass --keystore PATH (or --dev-account N on a devnet)")


def address_of(args: Args, chain: Chain) -> str:
    """The address a read-only command reports on: ``--address`` or the signer's."""
    from sharedllm.chain.accounts import keystore_address
    from sharedllm.protocol.types import parse_address

    if getattr(args, "address", None):
        try:
            return parse_address(args.address, "--address")
        except ProtocolError as exc:
            raise ConfigError(exc.message, field="address") from None
    if args.keystore is not None and args.dev_account is None:
        # A keystore's address is stored in clear: reading it needs no password.
        address = keystore_address(args.keystore)
        if address:
            return address
    return signer(args, chain).address


def emit(args: Args, data: dict[str, Any], lines: list[str]) -> None:
    """JSON (amounts as decimal wei strings) with ``--json``, else readable lines."""
    if args.json:
        print(json.dumps(data, default=str), flush=True)
    else:
        print("\n".join(lines), flush=True)


def chain_command(fn: Callable[[Args], int | None]) -> Callable[..., int | None]:
    """Turn transport failures that escape the wrappers into a one-line ChainError."""

    @functools.wraps(fn)
    def run(args: Args) -> int | None:
        from web3.exceptions import Web3Exception

        try:
            return fn(args)
        except (OSError, Web3Exception) as exc:
            first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            raise ChainError(f"RPC failed: {first}") from None

    return run


def wait_for_chain_time(chain: Chain, ready_at: int, what: str) -> int:
    """Wait until the latest block's time reaches ``ready_at`` (a transaction's gas is
    estimated against it), showing the time left; returns the chain time reached.

    The latest block's time moves in steps, so the time left is counted from the first
    reading plus the time waited since; once that has passed ``ready_at`` by
    ``BLOCK_WAIT_S`` with no newer block (a devnet that mines only on transactions), the
    wait ends and the transaction's own block decides."""
    from sharedllm.chain.times import ready_phrase

    first, began = chain.now(), time.monotonic()
    total = max(1, ready_at - first)
    pause = 1.0 if sys.stderr.isatty() else max(1.0, min(60.0, total / 10))
    with Progress(f"{what} delay", total) as progress:
        while True:
            latest = chain.now()
            now = max(latest, first + int(time.monotonic() - began))
            progress.step(now - first, ready_phrase(ready_at, now))
            if latest >= ready_at or now >= ready_at + BLOCK_WAIT_S:
                return max(now, ready_at)
            time.sleep(min(pause, max(0.2, ready_at - now)))
