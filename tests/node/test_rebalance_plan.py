"""When a node moves: the decision from the spans of the live network (no processes)."""

from __future__ import annotations

import random

from sharedllm.placement.rebalance import plan_move
from sharedllm.placement.registry_gaps import layer_coverage

LAYERS = 30


def test_a_node_on_crowded_layers_fills_a_gap_left_by_a_dead_node():
    """Three nodes on 0:10, one on 10:20; the 20:30 node died."""
    move = plan_move((0, 10), [(0, 10), (0, 10), (10, 20)], LAYERS)
    assert move is not None and (move.start, move.end) == (20, 30)
    assert "20:30" in move.reason


def test_once_one_node_moves_the_others_stay():
    """The mover counts at its target, so the two left on 0:10 see no gap."""
    assert plan_move((0, 10), [(0, 10), (10, 20), (20, 30)], LAYERS) is None


def test_a_stable_network_moves_nobody():
    spans = [(0, 10), (0, 10), (0, 10), (10, 20), (20, 30)]
    for i, own in enumerate(spans):
        assert plan_move(own, spans[:i] + spans[i + 1 :], LAYERS) is None


def test_the_only_node_on_some_layers_never_leaves_them():
    assert plan_move((10, 20), [(0, 10), (0, 10)], LAYERS) is None


def test_a_small_gain_is_not_worth_a_move_and_a_large_one_is():
    # Worst coverage 3 now, 4 after the move: 3 >= 0.75 * 4, so the node stays.
    crowded = [(0, 10)] * 4 + [(10, 20)] * 3 + [(20, 30)] * 3
    assert plan_move((0, 10), crowded, LAYERS) is None
    # Worst coverage 1 now, 2 after: a clear gain.
    move = plan_move((0, 10), [(0, 10)] * 2 + [(10, 20)] * 2 + [(20, 30)], LAYERS)
    assert move is not None and (move.start, move.end) == (20, 30)


def test_a_move_never_uncovers_a_layer_nor_lowers_the_worst_coverage():
    rng = random.Random(7)
    moved = 0
    for _ in range(400):
        spans = []
        for _ in range(rng.randint(2, 7)):
            start = rng.randrange(LAYERS)
            spans.append((start, min(LAYERS, start + rng.randint(1, 15))))
        own, others = spans[0], spans[1:]
        move = plan_move(own, others, LAYERS)
        if move is None:
            continue
        moved += 1
        assert move.end - move.start == own[1] - own[0]  # it keeps its layer count
        before = layer_coverage([*others, own], LAYERS)
        after = layer_coverage([*others, (move.start, move.end)], LAYERS)
        assert all(a > 0 for a, b in zip(after, before, strict=True) if b > 0)
        assert min(after) > min(before)
    assert moved >= 10  # the property was exercised, not vacuous
