"""Where the project keeps its local state; one place so every program agrees."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_RPC_URL = "http://127.0.0.1:8545"
PASSWORD_ENV = "SHAREDLLM_PASSWORD"  # a keystore's password, when no --password-file is given


def home() -> Path:
    """The state folder: ``$SHAREDLLM_HOME`` or ``~/.sharedllm``."""
    return Path(os.environ.get("SHAREDLLM_HOME") or Path.home() / ".sharedllm")


def default_rpc_url() -> str:
    return os.environ.get("SHAREDLLM_RPC_URL") or DEFAULT_RPC_URL


def deployment_file() -> Path:
    return Path(os.environ.get("SHAREDLLM_DEPLOYMENT") or home() / "deployment.json")


def models_dir() -> Path:
    return home() / "models"


def nodes_dir() -> Path:
    return home() / "nodes"
