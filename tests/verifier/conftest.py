"""Fixtures for the verifier tests: the default model, and a real hop's inputs for span 10:20.

The inputs come from running span 0:10 step by step over a prompt and a fixed answer fed one
token per step (as a client would after sampling), so they carry the model's real activation
outliers without needing the head.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from sharedllm.model.client_model import ClientModel
from sharedllm.model.importer import import_model
from sharedllm.model.span import SpanRunner
from sharedllm.model.store import ModelStore
from sharedllm.verifier.calibrate import decode

REPO_STATE = Path(__file__).resolve().parents[2] / ".state"
ANSWER = (
    "The sea is wide and deep, and its waves carry light from the sun across the water, "
    "while the wind sings over the shore and the gulls turn in the sky above the harbour. "
    "Far out, a ship sails slowly home through the evening fog."
)


def _store_with_default(home: Path) -> ModelStore | None:
    store = ModelStore(home / "models")
    if store.default_model_id() is None:
        return None
    manifest = store.manifest()
    return store if all(store.has_shard(h) for h in manifest.shards()) else None


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    """A store holding the default model: $SHAREDLLM_HOME's or the repo's, else a fresh import."""
    for candidate in (os.environ.get("SHAREDLLM_HOME"), REPO_STATE):
        if candidate and (found := _store_with_default(Path(candidate))) is not None:
            return found
    fresh = ModelStore(tmp_path_factory.mktemp("home") / "models")
    import_model(fresh)
    return fresh


@pytest.fixture(scope="session")
def client_model(store: ModelStore) -> ClientModel:
    return ClientModel(store, store.manifest())


@pytest.fixture(scope="session")
def span(store: ModelStore) -> SpanRunner:
    return SpanRunner(store, store.manifest(), 10, 20)


def _hop_inputs(store, client_model, prompt: str, steps: int) -> list[np.ndarray]:
    first = SpanRunner(store, store.manifest(), 0, 10)
    ids = client_model.prompt_ids(prompt)
    answer = client_model.prompt_ids(ANSWER, chat=False)[: steps - 1]
    embedded = [client_model.embed(ids)[0].numpy()]
    embedded += [client_model.embed([t])[0].numpy() for t in answer]
    return decode(first, embedded)


@pytest.fixture(scope="session")
def hop_inputs(store, client_model) -> list[np.ndarray]:
    """Inputs of span 10:20 for 41 steps: a prompt, then one token per step."""
    return _hop_inputs(store, client_model, "Write one sentence about the sea.", 41)


@pytest.fixture(scope="session")
def other_job_inputs(store, client_model) -> list[np.ndarray]:
    """Inputs of span 10:20 for a different, earlier job (for the replay cheat)."""
    return _hop_inputs(store, client_model, "What is interesting about chess?", 12)
