"""Spans of the library's own decoder layers reproduce `generate` token for token."""

from __future__ import annotations

import pytest
import torch
from model_helpers import generate_with_spans
from reference import NEW_TOKENS, PROMPTS

from sharedllm.errors import SessionError
from sharedllm.model.span import SpanRunner

pytestmark = pytest.mark.model

SPLITS = {
    "thirds": [(0, 10), (10, 20), (20, 30)],
    "uneven": [(0, 7), (7, 23), (23, 30)],
    "whole": [(0, 30)],
}


@pytest.mark.parametrize("split", SPLITS)
def test_greedy_spans_match_generate(store, manifest, client_model, generate_baseline, split):
    runners = [SpanRunner(store, manifest, start, end) for start, end in SPLITS[split]]
    for prompt in PROMPTS:
        ids = client_model.prompt_ids(prompt)
        tokens = generate_with_spans(client_model, runners, ids, NEW_TOKENS)
        assert tokens == generate_baseline[prompt], prompt


def test_capital_of_france(full_runner, client_model):
    ids = client_model.prompt_ids("What is the capital of France?")
    tokens = generate_with_spans(client_model, [full_runner], ids, 32)
    assert client_model.decode(tokens) == "The capital of France is Paris."
    assert tokens[-1] in client_model.eos_token_ids


def test_prefill_matches_step_by_step(store, manifest, client_model):
    runner = SpanRunner(store, manifest, 10, 20)
    hidden = client_model.embed(client_model.prompt_ids("Name a color."))
    whole = runner.prefill(hidden)
    cache = runner.new_cache()
    first = runner.forward(hidden[:, :5], cache, 0)
    rest = [runner.forward(hidden[:, i : i + 1], cache, i) for i in range(5, hidden.shape[1])]
    stepped = torch.cat([first, *rest], dim=1)
    scale = whole.abs().amax(dim=-1, keepdim=True)
    assert ((whole - stepped).abs() / scale).max() < 1e-4


def test_out_of_order_position_is_refused(full_runner, client_model):
    cache = full_runner.new_cache()
    hidden = client_model.embed([1, 2, 3])
    full_runner.forward(hidden, cache, 0)
    with pytest.raises(SessionError) as excinfo:
        full_runner.forward(hidden[:, :1], cache, 5)
    assert excinfo.value.code == "BAD_POSITION"
