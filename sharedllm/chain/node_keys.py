"""A node's ed25519 key: signs receipts and identifies the node's transport.

The 32-byte public key is what the registry stores as ``pubkey``. The file holds the
32-byte seed as hex, readable by the owner only; it is not encrypted because a running
node must sign without a person at the keyboard.
"""

from __future__ import annotations

import os
from pathlib import Path

from nacl.signing import SigningKey

from sharedllm import paths
from sharedllm.errors import KeystoreError


def default_node_key_path(name: str = "node") -> Path:
    return paths.nodes_dir() / f"{name}.ed25519"


def load_node_key(path: Path) -> SigningKey:
    try:
        seed = bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        raise KeystoreError(f"no node key at {path}", field="node_key") from None
    except ValueError:
        raise KeystoreError(f"{path} is not a hex ed25519 seed", field="node_key") from None
    if len(seed) != 32:
        raise KeystoreError(f"{path}: an ed25519 seed is 32 bytes", field="node_key")
    return SigningKey(seed)


def load_or_create_node_key(path: Path) -> SigningKey:
    """Load the key at ``path``, creating it (mode 0600) if the file does not exist yet.
    The file appears whole or not at all (written aside, then linked into place), so nodes
    starting together on one home all end up with the one key that won."""
    if path.exists():
        return load_node_key(path)
    key = SigningKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(bytes(key).hex() + "\n")
        os.link(aside, path)
    except FileExistsError:
        return load_node_key(path)
    finally:
        aside.unlink(missing_ok=True)
    return key


def public_key_bytes32(key: SigningKey) -> str:
    """The registry's ``pubkey`` value: 0x + the 32-byte verify key in hex."""
    return "0x" + bytes(key.verify_key).hex()
