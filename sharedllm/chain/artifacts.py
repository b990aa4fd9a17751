"""The compiled contracts shipped inside the package, so an install deploys without Hardhat."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from sharedllm.errors import ConfigError
from sharedllm.protocol.codes import RevertDecoder

CONTRACT_NAMES = ("ShareToken", "NodeRegistry", "JobMarket", "DisputeCourt", "BatchSettlement")
PACKAGE_DIR = Path(__file__).with_name("artifacts")


@cache
def load_artifact(name: str) -> dict[str, Any]:
    """``{"contractName", "abi", "bytecode"}`` of one contract."""
    path = resources.files("sharedllm.chain") / "artifacts" / f"{name}.json"
    try:
        artifact: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"contract artifact {name}.json is missing; run `make contracts`", field="artifact"
        ) from None
    return artifact


def abi(name: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = load_artifact(name)["abi"]
    return entries


@cache
def revert_decoder() -> RevertDecoder:
    """Decodes revert data of any of the three contracts (errors can bubble across them)."""
    return RevertDecoder(list(abi(name)) for name in CONTRACT_NAMES)
