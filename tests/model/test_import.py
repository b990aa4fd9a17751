"""Importing: a repeat import is a quick no-op; a local HF checkpoint folder imports too."""

from __future__ import annotations

import time

import pytest
import torch

from sharedllm.cli import sharedllm_main
from sharedllm.model.client_model import ClientModel
from sharedllm.model.importer import import_model
from sharedllm.model.span import SpanRunner
from sharedllm.model.store import ModelStore

pytestmark = pytest.mark.model


def test_reimport_is_a_quick_no_op(store, manifest):
    started = time.monotonic()
    result = import_model(store)
    assert result.reused
    assert result.manifest.model_id == manifest.model_id
    assert time.monotonic() - started < 5


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, client_model):
    """A two-layer random Llama saved with save_pretrained, using SmolLM2's tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=client_model.manifest.vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=False,
        eos_token_id=2,
        bos_token_id=1,
    )
    model = LlamaForCausalLM(config).eval()
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder)
    client_model.tokenizer.save_pretrained(folder)
    return folder, model


def test_local_checkpoint_imports_and_runs(tmp_path, tiny_checkpoint):
    folder, reference = tiny_checkpoint
    store = ModelStore(tmp_path / "models")
    result = import_model(store, folder)
    manifest = result.manifest
    assert not result.reused
    assert (manifest.num_layers, manifest.hidden_size, manifest.name) == (2, 64, folder.name)
    assert store.default_model_id() == manifest.model_id
    assert import_model(store, folder).reused

    client = ClientModel(store, manifest)
    runners = [SpanRunner(store, manifest, 0, 1), SpanRunner(store, manifest, 1, 2)]
    ids = client.prompt_ids("Hello there")
    hidden = client.embed(ids)
    for runner in runners:
        hidden = runner.prefill(hidden)
    with torch.inference_mode():
        expected = reference(torch.tensor([ids])).logits[0, -1]
    torch.testing.assert_close(client.next_logits(hidden), expected, rtol=1e-4, atol=1e-4)


def test_cli_lists_and_describes_models(tmp_path, tiny_checkpoint, monkeypatch, capsys):
    folder, _ = tiny_checkpoint
    monkeypatch.setenv("SHAREDLLM_HOME", str(tmp_path))
    assert sharedllm_main(["model", "import", str(folder)]) == 0
    model_id = capsys.readouterr().out.split()[-1]
    assert sharedllm_main(["model", "list"]) == 0
    assert model_id in capsys.readouterr().out
    assert sharedllm_main(["model", "info", model_id]) == 0
    assert "layers       2, hidden 64" in capsys.readouterr().out
    assert sharedllm_main(["model", "info", "0x" + "ab" * 32]) == 1
    assert "MODEL_NOT_FOUND" in capsys.readouterr().err
