"""Ways a node could cheat, for tests and the detection benchmark only.

Nothing here runs unless asked for by name: ``CheatingRunner(runner, mode, rate, seed)``
wraps a ``SpanRunner`` and exposes the same ``new_cache``/``forward``/``prefill``.
``cheating_wrapper("mode[:rate]")`` (``skip_layer``, ``random``, ``bf16``, ``int8``, ``int4``,
``replay``, ``passthrough``; rate 0.05 is an honest node that cheats on one step in twenty)
is what a node is handed to wrap its runner with; ``python -m sharedllm.testing.faulty_node``
starts such a node as a real process.

The wrapper always runs the honest span as well, so the session's cache stays exactly as an
honest node's would and the next step lines up; a real cheater would skip that work, which
changes what it saves, not what a verifier sees. The lower precisions are emulated in
float32 (weights rounded to bf16, to per-channel int8 or to int4 in groups of 32, activations
rounded to bf16 at every layer boundary): real bf16 kernels round more often, so emulated
cheats are the harder ones to detect.
"""

from __future__ import annotations

import copy
import enum
import random
from collections.abc import Callable

import torch
from torch import nn

from sharedllm.errors import ConfigError
from sharedllm.model.precision import dequantized
from sharedllm.model.span import SpanRunner

FIELD = "cheat"


class CheatMode(enum.Enum):
    SKIP_LAYER = "skip_layer"  # one decoder layer of the span is left out
    RANDOM = "random"  # made-up activations, scaled like the input
    BF16 = "bf16"  # a lower precision than the model's
    INT8 = "int8"  # weights in (fake) int8
    INT4 = "int4"  # weights in (fake) int4, one scale per group of 32
    REPLAY = "replay"  # activations recorded on an earlier, different job
    PASSTHROUGH = "passthrough"  # the input sent on unchanged


_WEIGHT_PRECISION = {CheatMode.INT8: "int8"}


def modes_for(precision: str) -> list[CheatMode]:
    """The cheats that mean something against a model of ``precision``: rounding an int8
    model's weights to int8 again changes nothing, so it is not one."""
    return [m for m in CheatMode if _WEIGHT_PRECISION.get(m) != precision]


def parse_cheat(text: str) -> tuple[CheatMode, float]:
    """``mode[:rate]``; the rate defaults to 1 (every step)."""
    name, _, rate_text = text.strip().partition(":")
    try:
        mode = CheatMode(name)
    except ValueError:
        names = ", ".join(m.value for m in CheatMode)
        raise ConfigError(f"unknown cheat mode {name!r} (one of {names})", field=FIELD) from None
    try:
        rate = float(rate_text) if rate_text else 1.0
    except ValueError:
        raise ConfigError(f"cheat rate {rate_text!r} is not a number", field=FIELD) from None
    if not 0 < rate <= 1:
        raise ConfigError("cheat rate must be in (0, 1]", field=FIELD)
    return mode, rate


def cheating_wrapper(text: str, seed: int = 0) -> Callable[[SpanRunner], CheatingRunner]:
    """What a node's ``wrap_runner`` is handed to cheat as ``text`` (``mode[:rate]``) asks."""
    mode, rate = parse_cheat(text)
    return lambda runner: CheatingRunner(runner, mode, rate, seed)


def cheat_schedule(rate: float, seed: int, steps: int) -> list[int]:
    """The steps (counted from 0) on which ``CheatingRunner(.., rate, seed)`` will cheat."""
    if rate >= 1:
        return list(range(steps))
    draws = random.Random(seed)
    return [step for step in range(steps) if draws.random() < rate]


class CheatingRunner:
    """A ``SpanRunner`` that cheats on each step with probability ``rate`` (seeded)."""

    def __init__(
        self,
        runner: SpanRunner,
        mode: CheatMode,
        rate: float = 1.0,
        seed: int = 0,
        replay_from: torch.Tensor | None = None,
    ) -> None:
        """``replay_from`` ([1, T, H] or [T, H]) stands for the outputs of an earlier job
        in ``REPLAY`` mode; without it, the runner replays the previous job it served."""
        if not 0 < rate <= 1:
            raise ConfigError("cheat rate must be in (0, 1]", field="rate")
        self.runner, self.mode, self.rate, self._seed = runner, mode, rate, seed
        self._rng = random.Random(seed)
        self._gen = torch.Generator().manual_seed(seed)
        self._cheap = _cheap_layers(runner, mode)
        self._session: list[torch.Tensor] = []  # honest outputs of the job being served
        self._past_job: torch.Tensor | None = None  # those of the job before it
        if replay_from is not None:
            past = torch.as_tensor(replay_from, dtype=torch.float32)
            self._past_job = past if past.dim() == 3 else past.unsqueeze(0)
        self.cheated_steps: list[int] = []  # step numbers (calls to forward) that cheated
        self._calls = 0
        # What the node code reads off a runner.
        self.manifest, self.config = runner.manifest, runner.config
        self.start, self.end = runner.start, runner.end

    def part(self, start: int, end: int) -> CheatingRunner:
        """Layers ``[start, end)``, cheated on the same way (with a schedule of their own)."""
        if (start, end) == (self.start, self.end):
            return self
        return CheatingRunner(self.runner.part(start, end), self.mode, self.rate, self._seed)

    def new_cache(self):
        return self.runner.new_cache()

    def cached_length(self, cache) -> int:
        return self.runner.cached_length(cache)

    def can_batch(self, cache) -> bool:
        """Never: the cheat schedule counts calls to ``forward``, one per step."""
        return False

    def prefill(self, hidden_all: torch.Tensor) -> torch.Tensor:
        return self.forward(hidden_all, self.new_cache(), 0)

    def forward(self, hidden: torch.Tensor, cache, start_pos: int) -> torch.Tensor:
        step, self._calls = self._calls, self._calls + 1
        if self.rate < 1 and self._rng.random() >= self.rate:
            return self._honest(hidden, cache, start_pos)
        self.cheated_steps.append(step)
        if self._cheap is not None:
            return self._with_layers(self._cheap, hidden, cache, start_pos)
        honest = self._honest(hidden, cache, start_pos)
        if self.mode is CheatMode.PASSTHROUGH:
            return hidden.to(torch.float32).clone()
        if self.mode is CheatMode.RANDOM:
            noise = torch.randn(hidden.shape, generator=self._gen)
            scale = hidden.to(torch.float32).norm(dim=-1, keepdim=True) / hidden.shape[-1] ** 0.5
            return noise * scale
        return self._replayed(honest, start_pos)

    def _honest(self, hidden: torch.Tensor, cache, start_pos: int) -> torch.Tensor:
        out = self.runner.forward(hidden, cache, start_pos)
        if self.mode is CheatMode.REPLAY:
            if start_pos == 0 and self._session:
                self._past_job = torch.cat(self._session, dim=1)
                self._session = []
            self._session.append(out.detach().clone())
        return out

    def _replayed(self, honest: torch.Tensor, start_pos: int) -> torch.Tensor:
        """The rows at the same positions of the previous job this runner served (wrapping
        round if that job was shorter); before any job finished, this job's rows shifted by
        one position, which is all a node with nothing saved could send."""
        if self._past_job is None:
            return torch.roll(honest, shifts=1, dims=1)
        rows = torch.arange(start_pos, start_pos + honest.shape[1]) % self._past_job.shape[1]
        return self._past_job[:, rows].clone()

    def _with_layers(self, layers: nn.ModuleList, hidden, cache, start_pos) -> torch.Tensor:
        # The span runner's layer list is swapped for the step; the node runs one step at a
        # time on one thread, so nothing else sees the cheap layers.
        honest_layers = self.runner.layers
        self.runner.layers = layers
        try:
            return self.runner.forward(hidden, cache, start_pos)
        finally:
            self.runner.layers = honest_layers


class _Skipped(nn.Module):
    """Runs the layer (so its cache slot fills as usual) but drops what it adds."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
        self.layer(hidden_states, **kwargs)
        return hidden_states


class _RoundedBf16(nn.Module):
    """A layer whose input and output are rounded to bf16, as a bf16 pipeline stores them."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
        out = self.layer(_bf16(hidden_states), **kwargs)
        return _bf16(out)


def _bf16(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.bfloat16).to(torch.float32)


def _int8(weight: torch.Tensor) -> torch.Tensor:
    """Symmetric per-output-channel int8 quantization, dequantized back to float32."""
    scale = weight.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127.0
    return (weight / scale).round().clamp(-127, 127) * scale


def _int4(weight: torch.Tensor, group: int = 32) -> torch.Tensor:
    """Symmetric int4 quantization with one scale per ``group`` inputs of a row (the usual
    4-bit layout), dequantized back to float32; a row that does not split evenly is one
    group."""
    rows, columns = weight.shape
    size = group if columns % group == 0 else columns
    grouped = weight.reshape(rows, columns // size, size)
    scale = grouped.abs().amax(dim=2, keepdim=True).clamp_min(1e-12) / 7.0
    return ((grouped / scale).round().clamp(-7, 7) * scale).reshape(rows, columns)


_ROUNDING = {CheatMode.BF16: _bf16, CheatMode.INT8: _int8, CheatMode.INT4: _int4}


def _cheap_layers(runner: SpanRunner, mode: CheatMode) -> nn.ModuleList | None:
    if mode is CheatMode.SKIP_LAYER:
        skipped = len(runner.layers) // 2
        return nn.ModuleList(
            _Skipped(layer) if i == skipped else layer for i, layer in enumerate(runner.layers)
        )
    if mode not in _ROUNDING:
        return None
    layers = copy.deepcopy(runner.layers)
    rounding = _ROUNDING[mode]
    with torch.no_grad():
        for module in layers.modules():
            # bf16 rounds every weight; int8 and int4 the Linear weights, in whatever
            # precision the model stores them (an int8 model's are dequantized first).
            names = [n for n, _ in module.named_parameters(recurse=False)]
            if mode is not CheatMode.BF16:
                names = ["weight"] if isinstance(module, nn.Linear) else []
            for name in names:
                rounded = rounding(dequantized(getattr(module, name)))
                setattr(module, name, nn.Parameter(rounded, requires_grad=False))
    if mode is CheatMode.BF16:
        return nn.ModuleList(_RoundedBf16(layer) for layer in layers)
    return layers
