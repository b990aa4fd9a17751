"""When a node moves: the decision from the spans of the live network (no processes)."""

from __future__ import annotations

import random

from sharedllm.placement.rebalance import (
    MAX_WEIGHT,
    plan_move,
    throughput_weights,
    weighted_coverage,
)
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


def test_nodes_on_like_hardware_count_alike_whatever_the_noise_of_their_figures():
    """A busy machine makes one node's figure up to half as fast again as another's: the
    stable network still moves nobody (a third is what the rule itself reacts to)."""
    spans = [(0, 10), (0, 10), (0, 10), (10, 20), (20, 30)]
    rng = random.Random(3)
    for _ in range(300):
        speeds = [20.0 * rng.uniform(0.8, 1.2) for _ in spans]
        assert throughput_weights(speeds) == [1.0] * len(spans)
        for i, own in enumerate(spans):
            others = spans[:i] + spans[i + 1 :]
            order = [speeds[i], *speeds[:i], *speeds[i + 1 :]]
            assert plan_move(own, others, LAYERS, speeds=order) is None


def test_a_fast_node_counts_as_several_and_the_mover_goes_to_the_slow_layers():
    """10:20 is served by a node four times faster than the rest: by count 10:20 and 20:30
    are equally thin (and no move raises the worst count), by throughput 20:30 is the
    thinnest, and a 0:10 node moves there."""
    others = [(0, 10), (0, 10), (10, 20), (20, 30)]
    assert plan_move((0, 10), others, LAYERS) is None
    move = plan_move((0, 10), others, LAYERS, speeds=[20.0, 20.0, 20.0, 80.0, 20.0])
    assert move is not None and (move.start, move.end) == (20, 30)
    assert "from 1 nodes' throughput to 2" in move.reason


def test_a_slow_node_alone_on_its_layers_gets_help():
    """The two 20:30 nodes are four times slower than the others: by count every layer has
    two nodes or more, by throughput 20:30 has half a node's, and a 0:10 node joins them."""
    others = [(0, 10)] * 3 + [(10, 20)] * 2 + [(20, 30)] * 2
    assert plan_move((0, 10), others, LAYERS) is None
    move = plan_move((0, 10), others, LAYERS, speeds=[20.0] * 6 + [5.0, 5.0])
    assert move is not None and (move.start, move.end) == (20, 30)
    assert "from 0.5 nodes' throughput to 1.5" in move.reason


def test_a_node_that_overstates_its_speed_counts_as_a_few_nodes_at_most():
    """Proof of concept: a node claiming a million tokens a second, counted at its word,
    would make its layers look served by fifty thousand nodes. It counts as MAX_WEIGHT
    median nodes, as a node that fast in truth would (and one claiming next to nothing as
    a quarter of one); the median itself does not move with one node's claim."""
    assert throughput_weights([20.0, 20.0, 1e6, 0.0]) == [1.0, 1.0, MAX_WEIGHT, 1.0]
    assert throughput_weights([20.0, 20.0, 1e-6]) == [1.0, 1.0, 1 / MAX_WEIGHT]
    assert throughput_weights([20.0, 20.0, 1e6, 1e6, 20.0]) == [1.0, 1.0, 4.0, 4.0, 1.0]


def test_with_any_speeds_a_move_never_uncovers_a_layer_nor_lowers_the_thinnest():
    rng = random.Random(11)
    moved = 0
    for _ in range(400):
        spans, speeds = [], []
        for _ in range(rng.randint(2, 7)):
            start = rng.randrange(LAYERS)
            spans.append((start, min(LAYERS, start + rng.randint(1, 15))))
            speeds.append(rng.choice([0.0, 5.0, 20.0, 25.0, 80.0, 400.0]))
        own, others = spans[0], spans[1:]
        move = plan_move(own, others, LAYERS, speeds=speeds)
        if move is None:
            continue
        moved += 1
        weights = throughput_weights(speeds)
        order = [*weights[1:], weights[0]]
        before = weighted_coverage([*others, own], order, LAYERS)
        after = weighted_coverage([*others, (move.start, move.end)], order, LAYERS)
        assert all(a > 0 for a, b in zip(after, before, strict=True) if b > 0)
        assert min(after) > min(before)
    assert moved >= 10
