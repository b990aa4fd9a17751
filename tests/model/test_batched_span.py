"""Several sessions' steps as one batch through a span: each row as if it had run alone."""

from __future__ import annotations

import pytest
import torch
from reference import PROMPTS
from transformers import DynamicCache

from sharedllm.errors import ModelError
from sharedllm.model.span import SpanRunner

pytestmark = pytest.mark.model


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = b.abs().amax(dim=-1, keepdim=True).clamp_min(1e-6)
    return float(((a - b).abs() / scale).max())


@pytest.fixture(scope="module")
def runner(store, manifest) -> SpanRunner:
    return SpanRunner(store, manifest, 10, 20)


def test_growing_cache_is_bit_for_bit_the_library_cache(runner, client_model):
    """The session cache writes into room it keeps, instead of concatenating per step; the
    numbers it hands the attention are the same, so every output is identical."""
    hidden = client_model.embed(client_model.prompt_ids(PROMPTS[2]))
    ours, stock = runner.new_cache(), DynamicCache(config=runner.config)
    steps = [(0, 7), *[(i, i + 1) for i in range(7, hidden.shape[1])]]
    for start, end in steps:
        a = runner.forward(hidden[:, start:end], ours, start)
        b = runner.forward(hidden[:, start:end], stock, start)
        assert torch.equal(a, b)
    # Past the first buffer's room (64 positions), so the growth path ran too.
    for pos in range(hidden.shape[1], 100):
        row = hidden[:, pos % hidden.shape[1] : pos % hidden.shape[1] + 1]
        assert torch.equal(runner.forward(row, ours, pos), runner.forward(row, stock, pos))


def test_a_batch_of_uneven_sessions_matches_each_alone(runner, client_model):
    """Five sessions with caches of different lengths step together: each row's output and
    each session's next steps agree with the same session run alone."""
    prompts = [client_model.embed(client_model.prompt_ids(p)) for p in PROMPTS]
    alone = [runner.new_cache() for _ in prompts]
    together = [runner.new_cache() for _ in prompts]
    for hidden, a, b in zip(prompts, alone, together, strict=True):
        runner.forward(hidden, a, 0)
        runner.forward(hidden, b, 0)
    assert len({c.get_seq_length(10) for c in alone}) > 1  # uneven: padding is exercised
    gen = torch.Generator().manual_seed(7)
    for _ in range(3):
        rows = [torch.randn(1, 1, runner.manifest.hidden_size, generator=gen) for _ in prompts]
        outs = runner.forward_batch(rows, together)
        for row, out, cache in zip(rows, outs, alone, strict=True):
            single = runner.forward(row, cache, cache.get_seq_length(10))
            assert out.shape == single.shape
            assert _relative(out, single) < 1e-4
    # Each session's cache grew by exactly its own steps, and a lone step still lines up.
    for a, b, hidden in zip(alone, together, prompts, strict=True):
        assert b.get_seq_length(10) == a.get_seq_length(10) == hidden.shape[1] + 3
        row = torch.ones(1, 1, runner.manifest.hidden_size)
        pos = a.get_seq_length(10)
        assert _relative(runner.forward(row, b, pos), runner.forward(row, a, pos)) < 1e-4


def test_batched_greedy_answers_match_alone(store, manifest, client_model, generate_baseline):
    """Every prompt decoded in one batch through three spans gives `generate`'s tokens."""
    runners = [SpanRunner(store, manifest, a, b) for a, b in [(0, 10), (10, 20), (20, 30)]]
    caches = [[r.new_cache() for r in runners] for _ in PROMPTS]
    last, answers = [], [[] for _ in PROMPTS]
    for prompt, row_caches in zip(PROMPTS, caches, strict=True):
        hidden = client_model.embed(client_model.prompt_ids(prompt))
        for r, cache in zip(runners, row_caches, strict=True):
            hidden = r.forward(hidden, cache, 0)
        last.append(hidden)
    for _ in range(24):
        rows = []
        for i, hidden in enumerate(last):
            token = int(torch.argmax(client_model.next_logits(hidden)))
            answers[i].append(token)
            rows.append(client_model.embed([token]))
        for depth, r in enumerate(runners):
            rows = r.forward_batch(rows, [c[depth] for c in caches])
        last = rows
    for prompt, answer in zip(PROMPTS, answers, strict=True):
        expected = generate_baseline[prompt][: len(answer)]  # it stops at the EOS
        assert answer[: len(expected)] == expected, prompt


def test_a_batch_refuses_rows_of_different_lengths(runner):
    width = runner.manifest.hidden_size
    caches = [runner.new_cache(), runner.new_cache()]
    with pytest.raises(ModelError) as err:
        runner.forward_batch([torch.zeros(1, 1, width), torch.zeros(1, 2, width)], caches)
    assert err.value.code == "BAD_SHAPE"
    assert all(c.get_seq_length(10) == 0 for c in caches)  # nothing ran
