"""Coverage of a model's layers by registered spans, and the window the network serves worst."""

from __future__ import annotations

import pytest

from sharedllm.chain.registry import NodeInfo
from sharedllm.errors import ConfigError
from sharedllm.placement.registry_gaps import (
    gaps,
    layer_coverage,
    registry_coverage,
    span_for_new_node,
    worst_covered_span,
)

MODEL = "0x" + "5e" * 32
OTHER = "0x" + "77" * 32


def registered(start: int, end: int, model: str = MODEL, status: str = "Active") -> NodeInfo:
    return NodeInfo(
        "0x" + "11" * 20, 100, "http://127.0.0.1:1", "0x" + "22" * 32, model, start, end, 1,
        status, 0,
    )  # fmt: skip


def test_coverage_counts_active_nodes_of_the_model_only() -> None:
    nodes = [
        registered(0, 10),
        registered(5, 15),
        registered(0, 30, model=OTHER),
        registered(20, 30, status="Unbonding"),
    ]
    assert registry_coverage(nodes, MODEL, 20) == [1] * 5 + [2] * 5 + [1] * 5 + [0] * 5
    # Spans past the model's last layer are clipped, not an error.
    assert layer_coverage([(25, 40)], 30) == [0] * 25 + [1] * 5


def test_the_worst_covered_window_wins_and_ties_go_to_the_lowest_start() -> None:
    coverage = [2] * 10 + [1] * 10 + [1] * 10
    assert worst_covered_span(coverage, 10) == (10, 20)
    assert worst_covered_span([0] * 30, 7) == (0, 7)
    assert worst_covered_span([3, 0, 0, 3, 0, 0], 2) == (1, 3)
    assert worst_covered_span([1, 1, 0], 1) == (2, 3)
    assert worst_covered_span([1] * 5, 9) == (0, 5)  # longer than the model: all of it
    with pytest.raises(ConfigError):
        worst_covered_span([1, 1], 0)
    with pytest.raises(ConfigError):
        worst_covered_span([], 3)


def test_gaps_are_the_runs_nobody_serves() -> None:
    assert gaps([1, 1, 1]) == []
    assert gaps([0, 1, 0, 0, 2, 0]) == [(0, 1), (2, 4), (5, 6)]
    assert gaps(layer_coverage([(0, 10), (20, 30)], 30)) == [(10, 20)]


def test_a_new_node_takes_the_thin_end_of_the_registered_network() -> None:
    nodes = [registered(0, 10), registered(10, 20), registered(0, 7), registered(5, 30, OTHER)]
    assert span_for_new_node(nodes, MODEL, 30, 10) == (20, 30)
    assert span_for_new_node(nodes, MODEL, 30, 3) == (20, 23)
    assert span_for_new_node([], MODEL, 30, 10) == (0, 10)
