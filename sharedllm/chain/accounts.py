"""Signing keys: encrypted JSON keystores for real networks, anvil's well-known keys for devnets.

The dev keys are public knowledge (anvil's default mnemonic), so they are refused on any
chain but the local one (chain id 31337): a typo in ``--rpc-url`` must not send a
transaction from a key the whole internet holds.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from sharedllm import paths
from sharedllm.cli_base import prompt_secret
from sharedllm.errors import ConfigError, KeystoreError

DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_CHAIN_ID = 31337
DEV_ACCOUNT_COUNT = 20
PASSWORD_ENV = paths.PASSWORD_ENV

Account.enable_unaudited_hdwallet_features()


def dev_account(index: int) -> LocalAccount:
    """Anvil's dev account ``index`` (0..19), derived from the public dev mnemonic."""
    if not 0 <= index < DEV_ACCOUNT_COUNT:
        raise ConfigError(f"--dev-account: must be 0..{DEV_ACCOUNT_COUNT - 1}", field="dev_account")
    account: LocalAccount = Account.from_mnemonic(
        DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}"
    )
    return account


def require_dev_chain(chain_id: int) -> None:
    if chain_id != DEV_CHAIN_ID:
        raise ConfigError(
            f"--dev-account only works on a local devnet (chain id {DEV_CHAIN_ID}), "
            f"this chain is {chain_id}; use --keystore",
            field="dev_account",
        )


def keystores_dir() -> Path:
    return paths.home() / "keystores"


def read_password(password_file: Path | None, *, new: bool = False) -> str:
    """From ``--password-file``, else ``$SHAREDLLM_PASSWORD``, else a hidden prompt on the
    terminal (``new``: typed twice, for a keystore being created)."""
    if password_file is not None:
        try:
            return password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise KeystoreError(
                f"cannot read password file {password_file}: {exc.strerror}"
            ) from None
    if PASSWORD_ENV in os.environ:
        return os.environ[PASSWORD_ENV]
    if sys.stdin.isatty():
        return prompt_secret("keystore password", repeat=new)
    raise KeystoreError(f"keystore is locked: pass --password-file or set {PASSWORD_ENV}")


def load_keystore(path: Path, password: str) -> LocalAccount:
    try:
        keyfile = json.loads(path.read_text())
    except FileNotFoundError:
        raise KeystoreError(f"no keystore at {path}", field="keystore") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise KeystoreError(f"{path} is not a JSON keystore: {exc}", field="keystore") from None
    try:
        key = Account.decrypt(keyfile, password)
    except ValueError:
        raise KeystoreError(f"wrong password for keystore {path}", field="password") from None
    except Exception as exc:  # eth-keyfile raises KeyError/TypeError on malformed files
        raise KeystoreError(f"{path} is not a valid keystore ({exc})", field="keystore") from None
    account: LocalAccount = Account.from_key(key)
    return account


def new_keystore(password: str, path: Path | None = None) -> tuple[LocalAccount, Path]:
    """Create a fresh key and write it encrypted; refuses to overwrite an existing file."""
    account = Account.create()
    path = path or keystores_dir() / f"{account.address}.json"
    if path.exists():
        raise KeystoreError(f"{path} already exists", field="keystore")
    path.parent.mkdir(parents=True, exist_ok=True)
    encrypted = Account.encrypt(account.key, password)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(encrypted, out)
    return account, path


def keystore_address(path: Path) -> str | None:
    """The checksummed address a keystore names in clear, or None if it names none."""
    try:
        address = json.loads(path.read_text()).get("address")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    if not isinstance(address, str):
        return None
    try:
        return to_checksum_address("0x" + address.removeprefix("0x"))
    except ValueError:
        return None


def list_keystores(folder: Path | None = None) -> list[tuple[str, Path]]:
    """``(address, path)`` of every keystore in the folder (addresses from the public part)."""
    folder = folder or keystores_dir()
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        address = keystore_address(path)
        if address:
            found.append((address, path))
    return found
