"""Sampling: greedy picks the top token; seeded sampling is reproducible and seed-dependent."""

from __future__ import annotations

import pytest
import torch
from model_helpers import generate_with_spans

from sharedllm.errors import ConfigError
from sharedllm.model.sampling import Sampler, SamplingParams


def test_greedy_takes_the_argmax():
    logits = torch.tensor([0.1, 3.0, 2.9, -1.0])
    assert Sampler(SamplingParams()).sample(logits) == 1


def test_top_p_never_draws_outside_the_nucleus():
    # Probabilities 0.5, 0.3, 0.15, 0.05: top_p 0.7 keeps exactly the first two.
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    sampler = Sampler(SamplingParams(temperature=1.0, top_p=0.7, seed=1))
    drawn = {sampler.sample(logits) for _ in range(300)}
    assert drawn == {0, 1}


@pytest.mark.parametrize(
    "kwargs", [{"temperature": -1}, {"top_p": 0}, {"top_p": 1.5}, {"seed": -3}]
)
def test_bad_parameters_are_refused(kwargs):
    with pytest.raises(ConfigError):
        SamplingParams(**kwargs)


@pytest.mark.model
def test_seeded_sampling_is_reproducible(full_runner, client_model):
    ids = client_model.prompt_ids("Tell me about the ocean.")

    def run(seed: int) -> list[int]:
        params = SamplingParams(temperature=0.8, top_p=0.9, seed=seed)
        return generate_with_spans(client_model, [full_runner], ids, 32, params)

    first = run(7)
    assert run(7) == first
    assert run(8) != first
