"""Every family in ``families.FAMILIES`` imports, splits into three spans and reproduces
``generate``: the same greedy tokens, and the prompt's logits to float32 rounding.

A family that still cannot be split fails at import with ``UNSUPPORTED_MODEL``, naming the
part it lacks.
"""

from __future__ import annotations

import pytest
import torch

from sharedllm.errors import ModelError
from sharedllm.model.architecture import Scaling
from sharedllm.model.client_model import ClientModel
from sharedllm.model.importer import import_model
from sharedllm.model.span import SpanRunner
from sharedllm.model.store import ModelStore
from tests.model import families
from tests.model.model_helpers import generate_with_spans

pytestmark = pytest.mark.model

PROMPT = "What is the capital of France?"
NEW_TOKENS = 12


@pytest.fixture(scope="module")
def family_store(tmp_path_factory) -> ModelStore:
    return ModelStore(tmp_path_factory.mktemp("family-models"))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, client_model):
    folder = tmp_path_factory.mktemp("family-checkpoints")
    return {
        f: families.make_checkpoint(folder, f, client_model.tokenizer) for f in families.FAMILIES
    }


def _served(store: ModelStore, folder, prompt_ids=None):
    manifest = import_model(store, folder).manifest
    client = ClientModel(store, manifest)
    ids = prompt_ids or client.prompt_ids(PROMPT)
    runners = [SpanRunner(store, manifest, a, b) for a, b in families.SPANS]
    return client, runners, ids


def _prompt_logits(client: ClientModel, runners: list[SpanRunner], ids: list[int]) -> torch.Tensor:
    hidden = client.embed(ids)
    for runner in runners:
        hidden = runner.prefill(hidden)
    return client.next_logits(hidden)


@pytest.mark.parametrize("family", list(families.FAMILIES))
def test_three_spans_reproduce_generate(family, family_store, checkpoints):
    client, runners, ids = _served(family_store, checkpoints[family])
    expected, logits = families.reference(checkpoints[family], ids, NEW_TOKENS)
    ours = generate_with_spans(client, runners, ids, NEW_TOKENS)
    assert ours == expected[: len(ours)] and len(ours) == len(expected)
    torch.testing.assert_close(_prompt_logits(client, runners, ids), logits, atol=1e-4, rtol=1e-4)


def test_absolute_positions_follow_the_step(family_store, checkpoints):
    """GPT-2's client adds the learned position of every token: decoding one token at a
    time must give what one pass over the whole sequence gives."""
    client, runners, ids = _served(family_store, checkpoints["gpt2"])
    whole = client.embed(ids)
    stepwise = torch.cat([client.embed([t], i) for i, t in enumerate(ids)], dim=1)
    torch.testing.assert_close(stepwise, whole)
    assert not torch.equal(client.embed(ids[:1], 0), client.embed(ids[:1], 5))


@pytest.mark.parametrize("family", ["granite", "gemma2"])
def test_the_family_constants_matter(family, family_store, checkpoints):
    """Proof of concept: a client that drops the constants the family applies outside its
    modules (Granite's multipliers, Gemma 2's soft cap) gets other logits."""
    client, runners, ids = _served(family_store, checkpoints[family])
    _, logits = families.reference(checkpoints[family], ids, 1)
    assert client.scaling != Scaling()
    client.scaling = Scaling()
    ours = _prompt_logits(client, runners, ids)
    assert (ours - logits).abs().max() > 1e-2


def test_gemma2_runs_on_eager_attention(family_store, checkpoints):
    """sdpa cannot soft-cap attention scores, so Gemma 2 runs the library's eager kernel."""
    _, runners, _ = _served(family_store, checkpoints["gemma2"])
    assert runners[0].config._attn_implementation == "eager"
    _, runners, _ = _served(family_store, checkpoints["llama"])
    assert runners[0].config._attn_implementation == "sdpa"


def test_a_family_that_cannot_be_split_names_what_it_lacks(tmp_path, family_store, client_model):
    """Falcon with ALiBi builds its position bias for all layers at once, and BLOOM has no
    known layout: both are refused at import, with what is missing."""
    folder = families.make_checkpoint(tmp_path, "falcon", client_model.tokenizer, alibi=True)
    with pytest.raises(ModelError, match="ALiBi") as refused:
        import_model(family_store, folder)
    assert refused.value.code == "UNSUPPORTED_MODEL"

    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.for_model(
        "bloom", vocab_size=len(client_model.tokenizer), hidden_size=64, n_layer=2, n_head=4
    )
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(tmp_path / "bloom")
    client_model.tokenizer.save_pretrained(tmp_path / "bloom")
    with pytest.raises(ModelError, match="fits no known layout") as refused:
        import_model(family_store, tmp_path / "bloom")
    assert refused.value.code == "UNSUPPORTED_MODEL"
    assert "transformer: no rotary_emb" in str(refused.value)
