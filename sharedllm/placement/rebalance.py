"""When a node should move to other layers, from the spans the live network serves.

A route needs every layer, so what the network can answer is bounded by its worst-covered
layer: the layer whose nodes together deliver the fewest tokens per second. A node moves
when that bound would clearly rise: when some layer has no node at all (no answer can be
given) and the move covers it, or when the thinnest layer's throughput would rise by more
than a third (Petals' servers move when the swarm's throughput falls below 0.75 of what a
re-placement would give). It never moves away from a layer no other node serves, and it
goes where a newly started node would (``span_choice``), keeping its layer count.

Each node counts by its announced ``tokens_per_s`` against the median node's, rounded to a
power of four (``throughput_weights``): nodes on like hardware count as one each whatever
the noise of their measurements (a busy machine easily makes one look half as fast again
as another, while a third is what the rule reacts to), and a node four times faster or
slower, such as a GPU among CPUs, counts as four nodes or as a quarter of one.

The spans are those of the nodes that answer a probe now, not of the registry: a node that
died is still registered until its stake is withdrawn. A node that is moving counts at its
target, so two nodes seeing one gap do not both fill it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from sharedllm.placement.registry_gaps import gaps, layer_coverage
from sharedllm.placement.span_choice import choose_span

# Move only if the worst-covered layer's coverage now is below this share of what it
# would be after the move.
MIN_GAIN = 0.75
# Weights are powers of WEIGHT_STEP: figures within a factor of its square root of the
# median's count as one node. A node counts as at most MAX_WEIGHT median nodes and at
# least its inverse, so one that overstates its speed cannot make a layer look crowded.
WEIGHT_STEP = 4.0
MAX_WEIGHT = 4.0


@dataclass(frozen=True)
class Move:
    start: int
    end: int
    reason: str


def throughput_weights(speeds: Sequence[float]) -> list[float]:
    """Each node's tokens per second as a multiple of the median node's, rounded to a power
    of ``WEIGHT_STEP`` and kept within ``1/MAX_WEIGHT .. MAX_WEIGHT``; a node that announced
    no figure (0) counts as the median."""
    known = [s for s in speeds if s > 0]
    if not known:
        return [1.0] * len(speeds)
    median = statistics.median(known)

    def weight(speed: float) -> float:
        steps = round(math.log(speed / median, WEIGHT_STEP))
        return min(MAX_WEIGHT, max(1 / MAX_WEIGHT, WEIGHT_STEP**steps))

    return [weight(s) if s > 0 else 1.0 for s in speeds]


def weighted_coverage(
    spans: Sequence[tuple[int, int]], weights: Sequence[float], num_layers: int
) -> list[float]:
    """The summed weight of the spans serving each layer ``0..num_layers-1``."""
    coverage = [0.0] * num_layers
    for (start, end), weight in zip(spans, weights, strict=True):
        for layer in range(max(0, start), min(end, num_layers)):
            coverage[layer] += weight
    return coverage


def plan_move(
    own: tuple[int, int],
    others: Sequence[tuple[int, int]],
    num_layers: int,
    *,
    speeds: Sequence[float] | None = None,
) -> Move | None:
    """Where the node serving ``own`` should move, given the other live nodes' spans; None
    when it should stay. ``speeds`` are the announced tokens per second, this node's first
    and then the others' in order (all counted alike when left out)."""
    start, end = own
    without = layer_coverage(others, num_layers)
    if any(without[layer] == 0 for layer in range(start, end)):
        return None  # it is the only node on some of its layers
    weights = throughput_weights(speeds if speeds is not None else [0.0] * (len(others) + 1))
    if len(weights) != len(others) + 1:
        raise ValueError(f"speeds: expected {len(others) + 1} figures, got {len(weights)}")
    mine, theirs = weights[0], weights[1:]
    target = choose_span(num_layers, end - start, others, theirs)
    if target == own:
        return None
    now = min(weighted_coverage([*others, own], [*theirs, mine], num_layers))
    after = min(weighted_coverage([*others, target], [*theirs, mine], num_layers))
    if after <= now or (now > 0 and now >= MIN_GAIN * after):
        return None
    if now == 0:
        missing = ", ".join(f"{a}:{b}" for a, b in gaps(layer_coverage([*others, own], num_layers)))
        reason = f"no live node serves layers {missing}"
    else:
        reason = f"the thinnest layer would go from {now:g} nodes' throughput to {after:g}"
    return Move(target[0], target[1], reason)
