"""Options and plumbing every chain command shares: RPC, deployment, signer, output.

Option values are parsed inside the commands rather than by argparse ``type=``, so a bad
value becomes the program's one-line ``error: [CODE] ...`` instead of a usage dump.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sharedllm import paths
from sharedllm.errors import ChainError, ConfigError, KeystoreError, ProtocolError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from sharedllm.chain.connection import Chain

# web3 and eth-account are imported by the functions that use them, not here: every
# command's parser is built from these options, and those imports cost seconds.

AMOUNT_HELP = 'in SHARE, decimals allowed ("150", "0.5")'


def add_chain_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rpc-url",
        help="JSON-RPC URL (default: $SHAREDLLM_RPC_URL, the deployment file's, or "
        f"{paths.DEFAULT_RPC_URL})",
    )
    parser.add_argument(
        "--deployment",
        type=Path,
        help="deployment file (default: $SHAREDLLM_DEPLOYMENT or $SHAREDLLM_HOME/deployment.json)",
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def add_account_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--keystore", type=Path, help="encrypted JSON keystore of the account")
    group.add_argument(
        "--dev-account", metavar="N", help="anvil dev account N (0..19); devnet (chain 31337) only"
    )
    parser.add_argument(
        "--password-file",
        type=Path,
        help="file holding the keystore password (else $SHAREDLLM_PASSWORD, else a prompt)",
    )


def open_chain(args: argparse.Namespace) -> Chain:
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


def signer(args: argparse.Namespace, chain: Chain) -> LocalAccount:
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


def address_of(args: argparse.Namespace, chain: Chain) -> str:
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


def emit(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> None:
    """JSON (amounts as decimal wei strings) with ``--json``, else readable lines."""
    if args.json:
        print(json.dumps(data, default=str), flush=True)
    else:
        print("\n".join(lines), flush=True)


def chain_command(fn: Callable[[argparse.Namespace], int | None]) -> Callable[..., int | None]:
    """Turn transport failures that escape the wrappers into a one-line ChainError."""

    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int | None:
        from web3.exceptions import Web3Exception

        try:
            return fn(args)
        except (OSError, Web3Exception) as exc:
            first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            raise ChainError(f"RPC failed: {first}") from None

    return run
