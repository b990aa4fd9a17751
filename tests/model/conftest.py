"""Fixtures for the model tests: one imported default model and one `generate` baseline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from model_helpers import NEW_TOKENS, PROMPTS

from sharedllm.model.client_model import ClientModel
from sharedllm.model.importer import default_gguf, import_model
from sharedllm.model.span import SpanRunner
from sharedllm.model.store import Manifest, ModelStore

REPO_STATE = Path(__file__).resolve().parents[2] / ".state"


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
def manifest(store: ModelStore) -> Manifest:
    return store.manifest()


@pytest.fixture(scope="session")
def client_model(store: ModelStore, manifest: Manifest) -> ClientModel:
    return ClientModel(store, manifest)


@pytest.fixture(scope="session")
def full_runner(store: ModelStore, manifest: Manifest) -> SpanRunner:
    return SpanRunner(store, manifest, 0, manifest.num_layers)


@pytest.fixture(scope="session")
def reference_model():
    """The whole default model as transformers loads it from the original GGUF file."""
    from transformers import AutoModelForCausalLM

    gguf = default_gguf()
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32, local_files_only=True
    )
    return model.eval()


@pytest.fixture(scope="session")
def generate_baseline(reference_model, client_model: ClientModel) -> dict[str, list[int]]:
    """Greedy tokens from `generate` for each prompt, up to and including its EOS token."""
    baseline = {}
    for prompt in PROMPTS:
        ids = client_model.prompt_ids(prompt)
        input_ids = torch.tensor([ids])
        with torch.inference_mode():
            out = reference_model.generate(
                input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=NEW_TOKENS,
                do_sample=False,
            )
        baseline[prompt] = out[0, len(ids) :].tolist()
    return baseline
