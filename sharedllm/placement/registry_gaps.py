"""Where the registered network is thin: per-layer coverage of a model from the registry.

``--layers auto`` (see ``span_choice``) decides from the peers a node was told about; this
module gives the same decision from the chain, which lists every staked node, and the
coverage figures the ``sharedllm nodes`` view draws.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sharedllm.chain.registry import NodeInfo as RegisteredNode
from sharedllm.errors import ConfigError
from sharedllm.placement.span_choice import choose_span


def registry_spans(nodes: Iterable[RegisteredNode], model_id: str) -> list[tuple[int, int]]:
    """The spans of the active registered nodes serving ``model_id``."""
    wanted = model_id.lower()
    return [(n.start, n.end) for n in nodes if n.active and n.model_id == wanted]


def layer_coverage(spans: Iterable[tuple[int, int]], num_layers: int) -> list[int]:
    """How many spans serve each layer ``0..num_layers-1``; parts past the model are ignored."""
    coverage = [0] * num_layers
    for start, end in spans:
        for layer in range(max(0, start), min(end, num_layers)):
            coverage[layer] += 1
    return coverage


def registry_coverage(nodes: Iterable[RegisteredNode], model_id: str, num_layers: int) -> list[int]:
    return layer_coverage(registry_spans(nodes, model_id), num_layers)


def worst_covered_span(coverage: Sequence[int], length: int) -> tuple[int, int]:
    """The ``length``-layer window with the least total coverage, earliest on a tie.

    Total rather than minimum coverage, as ``span_choice`` measures it: a window that fills
    two gaps helps more routes than one that fills a single gap.
    """
    if not coverage:
        raise ConfigError("coverage: the model has no layers", field="coverage")
    if length < 1:
        raise ConfigError("length: must be at least 1 layer", field="length")
    length = min(length, len(coverage))
    best = min(
        range(len(coverage) - length + 1),
        key=lambda s: (sum(coverage[s : s + length]), s),
    )
    return best, best + length


def gaps(coverage: Sequence[int]) -> list[tuple[int, int]]:
    """Runs of layers nobody serves, as half-open spans; any gap means no route exists."""
    found: list[tuple[int, int]] = []
    start: int | None = None
    for layer, count in enumerate([*coverage, 1]):
        if count == 0 and start is None:
            start = layer
        elif count != 0 and start is not None:
            found.append((start, layer))
            start = None
    return found


def span_for_new_node(
    nodes: Iterable[RegisteredNode], model_id: str, num_layers: int, count: int
) -> tuple[int, int]:
    """``--layers auto`` from the registry: the worst-served window that lines up with a
    registered span, by ``span_choice``'s rule, so routes can actually chain through it."""
    return choose_span(num_layers, count, registry_spans(nodes, model_id))
