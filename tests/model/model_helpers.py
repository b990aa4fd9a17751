"""Shared by the model tests: the prompts, and a minimal in-process generation loop over span
runners, driven the way a client drives a route."""

from __future__ import annotations

from sharedllm.model.client_model import ClientModel
from sharedllm.model.sampling import Sampler, SamplingParams
from sharedllm.model.span import SpanRunner


def generate_with_spans(
    client: ClientModel,
    runners: list[SpanRunner],
    prompt_ids: list[int],
    max_new_tokens: int,
    params: SamplingParams | None = None,
) -> list[int]:
    sampler = Sampler(params or SamplingParams())
    caches = [runner.new_cache() for runner in runners]
    position, step_ids, produced = 0, list(prompt_ids), []
    while len(produced) < max_new_tokens:
        hidden = client.embed(step_ids, position)
        for runner, cache in zip(runners, caches, strict=True):
            hidden = runner.forward(hidden, cache, position)
        position += len(step_ids)
        token = sampler.sample(client.next_logits(hidden))
        produced.append(token)
        if token in client.eos_token_ids:
            break
        step_ids = [token]
    return produced
