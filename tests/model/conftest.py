"""Fixtures for the model tests (the model, its client side and the `generate` baseline are
session fixtures of tests/conftest.py)."""

from __future__ import annotations

import pytest

from sharedllm.model.span import SpanRunner
from sharedllm.model.store import Manifest, ModelStore


@pytest.fixture(scope="session")
def full_runner(store: ModelStore, manifest: Manifest) -> SpanRunner:
    return SpanRunner(store, manifest, 0, manifest.num_layers)
