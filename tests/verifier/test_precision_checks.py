"""The verifier recomputes in the job's precision: an int8 model's honest hop passes, and a
node that serves it in a cheaper precision (or cheats in any other way) is caught."""

from __future__ import annotations

import numpy as np
import pytest

from sharedllm.model.client_model import ClientModel
from sharedllm.model.importer import import_model
from sharedllm.model.span import SpanRunner
from sharedllm.model.store import ModelStore
from sharedllm.testing.calibrate import decode
from sharedllm.testing.cheats import CheatingRunner, CheatMode, modes_for
from sharedllm.verifier.recompute import HopTranscript, check_hop
from tests.model import families

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def int8_hop(tmp_path_factory, client_model):
    """Span 2:4 of a tiny int8 Llama, and one job's inputs to it (a prompt, then tokens)."""
    folder = families.make_checkpoint(
        tmp_path_factory.mktemp("ckpt"), "llama", client_model.tokenizer
    )
    store = ModelStore(tmp_path_factory.mktemp("models"))
    manifest = import_model(store, folder, precision="int8").manifest
    client = ClientModel(store, manifest)
    first = SpanRunner(store, manifest, 0, 2)
    ids = client.prompt_ids("Write one sentence about the sea.")
    steps = [client.embed(ids)] + [
        client.embed([t], len(ids) + i) for i, t in enumerate((5, 9, 13))
    ]
    cache, position, inputs = first.new_cache(), 0, []
    for hidden in steps:
        inputs.append(first.forward(hidden, cache, position)[0].numpy().copy())
        position += hidden.shape[1]
    return SpanRunner(store, manifest, 2, 4), inputs


def test_an_honest_int8_hop_passes_and_is_reproducible(int8_hop):
    span, inputs = int8_hop
    outputs = decode(span, inputs)
    verdict = check_hop(span, HopTranscript.from_arrays(inputs, outputs)).verdict
    assert verdict.ok
    assert all(np.array_equal(a, b) for a, b in zip(outputs, decode(span, inputs), strict=True))


def test_int8_cheats_exclude_rounding_to_int8_again():
    assert CheatMode.INT8 not in modes_for("int8") and CheatMode.INT4 in modes_for("int8")
    assert set(modes_for("float32")) == set(CheatMode)


@pytest.mark.parametrize("mode", modes_for("int8"), ids=lambda m: m.value)
def test_each_cheat_on_an_int8_model_is_caught(int8_hop, mode):
    span, inputs = int8_hop
    other = np.concatenate(decode(span, inputs[::-1]))
    cheat = CheatingRunner(span, mode, seed=3, replay_from=other)
    verdict = check_hop(span, HopTranscript.from_arrays(inputs, decode(cheat, inputs))).verdict
    assert not verdict.ok
    # The margins on the real model are bench/detection.py's; this tiny one is a smoke test.
    assert verdict.score > 2 * verdict.threshold
