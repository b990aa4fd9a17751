"""Shared fixtures. Anything that starts a process stops it in ``finally``, even on failure."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sharedllm.chain.connection import Chain
from sharedllm.chain.deployment import Deployment
from sharedllm.chain.devnet import Devnet
from sharedllm.localnet import LocalNetwork
from sharedllm.model.client_model import ClientModel
from sharedllm.model.store import Manifest, ModelStore
from sharedllm.node.host_wire import SOCKET_ENV
from sharedllm.node.local import spawn_node_host
from sharedllm.processes import Child

REPO_STATE = Path(__file__).resolve().parents[1] / ".state"


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


def _home_with_model(home: Path) -> bool:
    store = ModelStore(home / "models")
    if store.default_model_id() is None:
        return False
    return all(store.has_shard(h) for h in store.manifest().shards())


@pytest.fixture(scope="session")
def model_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A state folder holding the imported default model ($SHAREDLLM_HOME's or the repo's
    ``.state``, else a fresh import); node processes started by tests inherit it."""
    from sharedllm.model.importer import import_model

    home = next(
        (
            Path(c)
            for c in (os.environ.get("SHAREDLLM_HOME"), REPO_STATE)
            if c and _home_with_model(Path(c))
        ),
        None,
    )
    if home is None:
        home = tmp_path_factory.mktemp("model-home")
        import_model(ModelStore(home / "models"))
    old = os.environ.get("SHAREDLLM_HOME")
    os.environ["SHAREDLLM_HOME"] = str(home)
    try:
        yield home
    finally:
        if old is None:
            os.environ.pop("SHAREDLLM_HOME", None)
        else:
            os.environ["SHAREDLLM_HOME"] = old


@pytest.fixture(scope="session", autouse=True)
def node_host(request: pytest.FixtureRequest) -> Iterator[Child | None]:
    """When the session has tests marked ``nodes``, one node host serves it: every
    ``sharedllm-node run`` a test starts inherits ``$SHAREDLLM_NODE_HOST`` and becomes a
    fork of the host, ready in about a second instead of importing torch again."""
    if not any(item.get_closest_marker("nodes") for item in request.session.items):
        yield None
        return
    home = request.getfixturevalue("model_home")
    folder = Path(tempfile.mkdtemp(prefix="sharedllm-host-"))  # short: a socket path is <108 bytes
    host = spawn_node_host(folder / "node.sock", home / "models")
    try:
        host.wait_ready("node host")
        os.environ[SOCKET_ENV] = str(folder / "node.sock")
        yield host
    finally:
        os.environ.pop(SOCKET_ENV, None)
        host.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def paid_network(model_home: Path, node_host: Child | None) -> Iterator[LocalNetwork]:
    """One devnet with three staked paid node processes, shared by the modules that neither
    kill a node nor cheat (each uses dev accounts of its own and compares balances only
    against what they were before its own jobs); stopped at the end of the session."""
    with LocalNetwork() as network:
        yield network


@pytest.fixture(scope="session")
def store(model_home: Path) -> ModelStore:
    return ModelStore(model_home / "models")


@pytest.fixture(scope="session")
def manifest(store: ModelStore) -> Manifest:
    return store.manifest()


@pytest.fixture(scope="session")
def client_model(store: ModelStore, manifest: Manifest) -> ClientModel:
    return ClientModel(store, manifest)


@pytest.fixture(scope="session")
def reference_model():
    from reference import reference_model

    return reference_model()


@pytest.fixture(scope="session")
def generate_baseline(reference_model, client_model: ClientModel) -> dict[str, list[int]]:
    """Greedy tokens of transformers' own `generate` on the whole model, per prompt."""
    from reference import generate_tokens

    return generate_tokens(reference_model, client_model)
