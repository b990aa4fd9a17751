"""``--layers auto``: how many layers fit the memory budget, and which ones to take.

The node takes the window the network serves worst (fewest peers covering its layers), and
only windows that start where a peer's span ends (or at 0) or end where one starts (or at
the last layer), because routes chain spans end to start: a span that lines up with nobody
could never be used.
"""

from __future__ import annotations

from collections.abc import Sequence

from sharedllm.errors import ConfigError

RUNTIME_OVERHEAD_BYTES = 600 * 1024 * 1024  # torch, transformers and the server itself


def layers_that_fit(budget_bytes: int, layer_bytes: int, cache_bytes: int, num_layers: int) -> int:
    room = budget_bytes - RUNTIME_OVERHEAD_BYTES - cache_bytes
    count = min(num_layers, room // max(1, layer_bytes))
    if count < 1:
        raise ConfigError(
            f"a memory budget of {budget_bytes >> 20} MiB holds no layer "
            f"({layer_bytes >> 20} MiB each, plus {cache_bytes >> 20} MiB of cache)",
            field="memory_budget",
        )
    return int(count)


def choose_span(
    num_layers: int,
    count: int,
    peer_spans: Sequence[tuple[int, int]],
    weights: Sequence[float] | None = None,
) -> tuple[int, int]:
    """The ``count``-layer window covered by the fewest peer spans (or the least summed
    ``weights``, one per span), earliest on a tie."""
    count = min(count, num_layers)
    coverage = [0.0] * num_layers
    for i, (start, end) in enumerate(peer_spans):
        for layer in range(max(0, start), min(end, num_layers)):
            coverage[layer] += 1.0 if weights is None else weights[i]
    starts = {0, num_layers - count}
    for start, end in peer_spans:
        starts.update({end, start - count})
    valid = sorted(s for s in starts if 0 <= s <= num_layers - count)
    best = min(valid, key=lambda s: (sum(coverage[s : s + count]), s))
    return best, best + count
