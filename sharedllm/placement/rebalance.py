"""When a node should move to other layers, from the spans the live network serves.

A route needs every layer, so what the network can answer is bounded by its worst-covered
layer. A node moves when that bound would clearly rise: when some layer has no node at all
(no answer can be given) and the move covers it, or when the worst coverage would rise by
more than a third (Petals' servers move when the swarm's throughput falls below 0.75 of
what a re-placement would give). It never moves away from a layer no other node serves,
and it goes where a newly started node would (``span_choice``), keeping its layer count.

The spans are those of the nodes that answer a probe now, not of the registry: a node that
died is still registered until its stake is withdrawn. A node that is moving counts at its
target, so two nodes seeing one gap do not both fill it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sharedllm.placement.registry_gaps import gaps, layer_coverage
from sharedllm.placement.span_choice import choose_span

# Move only if the worst-covered layer's coverage now is below this share of what it
# would be after the move.
MIN_GAIN = 0.75


@dataclass(frozen=True)
class Move:
    start: int
    end: int
    reason: str


def plan_move(
    own: tuple[int, int], others: Sequence[tuple[int, int]], num_layers: int
) -> Move | None:
    """Where the node serving ``own`` should move, given the other live nodes' spans; None
    when it should stay."""
    start, end = own
    without = layer_coverage(others, num_layers)
    if any(without[layer] == 0 for layer in range(start, end)):
        return None  # it is the only node on some of its layers
    target = choose_span(num_layers, end - start, others)
    if target == own:
        return None
    now = min(layer_coverage([*others, own], num_layers))
    after = min(layer_coverage([*others, target], num_layers))
    if after <= now or (now > 0 and now >= MIN_GAIN * after):
        return None
    if now == 0:
        missing = ", ".join(f"{a}:{b}" for a, b in gaps(layer_coverage([*others, own], num_layers)))
        reason = f"no live node serves layers {missing}"
    else:
        reason = f"the worst-covered layer would go from {now} nodes to {after}"
    return Move(target[0], target[1], reason)
