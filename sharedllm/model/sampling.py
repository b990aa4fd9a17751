"""Choosing the next token from logits: greedy, or temperature and nucleus (top-p) sampling.

A seeded sampler draws the same tokens from the same logits every time, so a generation can
be replayed (after a failover, or by anyone checking a transcript).
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass

import torch

from sharedllm.errors import ConfigError


@dataclass(frozen=True)
class SamplingParams:
    """``temperature`` 0 means greedy; ``seed`` None means a fresh random seed."""

    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.temperature, (int, float)) or isinstance(self.temperature, bool):
            raise ConfigError("temperature must be a number", field="temperature")
        if not math.isfinite(self.temperature) or self.temperature < 0:
            raise ConfigError("temperature must be finite and >= 0", field="temperature")
        if not isinstance(self.top_p, (int, float)) or not 0 < self.top_p <= 1:
            raise ConfigError("top_p must be in (0, 1]", field="top_p")
        if self.seed is not None and (
            not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0
        ):
            raise ConfigError("seed must be a non-negative integer", field="seed")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


class Sampler:
    """Draws tokens for one generation; keep one per generation so the seed sequence holds."""

    def __init__(self, params: SamplingParams) -> None:
        self.params = params
        self.seed = params.seed if params.seed is not None else secrets.randbits(63)
        self._generator = torch.Generator().manual_seed(self.seed)

    def sample(self, logits: torch.Tensor) -> int:
        """The next token id from logits over the vocabulary (shape [vocab])."""
        logits = logits.reshape(-1).to(torch.float32)
        if self.params.greedy:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits / self.params.temperature, dim=-1)
        if self.params.top_p < 1:
            probs = _nucleus(probs, self.params.top_p)
        return int(torch.multinomial(probs, 1, generator=self._generator))


def _nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the most likely tokens whose mass first reaches ``top_p``; zero the rest."""
    sorted_probs, order = torch.sort(probs, descending=True)
    before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
    sorted_probs[before >= top_p] = 0
    return torch.zeros_like(probs).scatter_(0, order, sorted_probs)
