"""Fixtures for the verifier tests: the default model, and a real hop's inputs for span 10:20.

The inputs come from running span 0:10 step by step over a prompt and a fixed answer fed one
token per step (as a client would after sampling), so they carry the model's real activation
outliers without needing the head.
"""

from __future__ import annotations

import numpy as np
import pytest

from sharedllm.model.span import SpanRunner
from sharedllm.model.store import ModelStore
from sharedllm.testing.calibrate import decode

ANSWER = (
    "The sea is wide and deep, and its waves carry light from the sun across the water, "
    "while the wind sings over the shore and the gulls turn in the sky above the harbour. "
    "Far out, a ship sails slowly home through the evening fog."
)


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
