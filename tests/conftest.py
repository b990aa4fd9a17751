"""Shared fixtures. Anything that starts a process stops it in ``finally``, even on failure."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sharedllm.chain.connection import Chain
from sharedllm.chain.deployment import Deployment
from sharedllm.chain.devnet import Devnet


@pytest.fixture
def sharedllm_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private state folder, so tests never read or write ``~/.sharedllm``."""
    home = tmp_path / "sharedllm-home"
    home.mkdir()
    monkeypatch.setenv("SHAREDLLM_HOME", str(home))
    monkeypatch.delenv("SHAREDLLM_DEPLOYMENT", raising=False)
    monkeypatch.delenv("SHAREDLLM_RPC_URL", raising=False)
    monkeypatch.delenv("SHAREDLLM_PASSWORD", raising=False)
    return home


@pytest.fixture
def anvil() -> Iterator[Devnet]:
    """A fresh anvil on a free port (nothing deployed yet); ``anvil.rpc_url`` reaches it."""
    net = Devnet()
    try:
        net.start_anvil()
        yield net
    finally:
        net.stop()


@pytest.fixture
def deployment(anvil: Devnet, sharedllm_home: Path) -> Deployment:
    """The three contracts deployed to ``anvil`` with devnet parameters, dev accounts 1..9
    funded with 10,000 SHARE each and the reward pool filled; written to the default
    deployment file under the test's ``SHAREDLLM_HOME``."""
    anvil.deployment_path = sharedllm_home / "deployment.json"
    return anvil.deploy_contracts()


@pytest.fixture
def chain(anvil: Devnet, deployment: Deployment) -> Chain:
    """A checked connection to the deployment, with the token, registry and market wrappers."""
    return anvil.chain()
