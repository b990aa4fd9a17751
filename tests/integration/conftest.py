"""Fixtures for tests against real node processes and the real model.

Node processes are started once per test module (the machine is small) and always stopped;
the `generate` baseline is computed once per test session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from net_helpers import NEW_TOKENS, PROMPTS

from sharedllm.model.client_model import ClientModel
from sharedllm.model.store import Manifest, ModelStore

REPO_STATE = Path(__file__).resolve().parents[2] / ".state"


def _home_with_model() -> Path | None:
    for candidate in (os.environ.get("SHAREDLLM_HOME"), REPO_STATE):
        if candidate and ModelStore(Path(candidate) / "models").default_model_id():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def model_home() -> Iterator[Path]:
    """The state folder holding the imported default model; node processes inherit it."""
    home = _home_with_model()
    if home is None:
        pytest.skip("no imported model: run `sharedllm model import` (make setup)")
    old = os.environ.get("SHAREDLLM_HOME")
    os.environ["SHAREDLLM_HOME"] = str(home)
    try:
        yield home
    finally:
        if old is None:
            os.environ.pop("SHAREDLLM_HOME", None)
        else:
            os.environ["SHAREDLLM_HOME"] = old


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
def generate_baseline(client_model: ClientModel) -> dict[str, list[int]]:
    """Greedy tokens of transformers' own `generate` on the whole model (loaded from the
    original GGUF), per prompt, up to and including the EOS where it stops."""
    from transformers import AutoModelForCausalLM

    from sharedllm.model.importer import default_gguf

    gguf = default_gguf()
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32, local_files_only=True
    ).eval()
    baseline = {}
    for prompt in PROMPTS:
        ids = client_model.prompt_ids(prompt)
        input_ids = torch.tensor([ids])
        with torch.inference_mode():
            out = model.generate(
                input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=NEW_TOKENS,
                do_sample=False,
            )
        baseline[prompt] = out[0, len(ids) :].tolist()
    del model
    return baseline
