"""--layers auto: the memory budget sets how many layers, the peers set which ones."""

from __future__ import annotations

import pytest

from sharedllm.errors import ConfigError
from sharedllm.placement.span_choice import RUNTIME_OVERHEAD_BYTES, choose_span, layers_that_fit

MB = 1 << 20


def test_budget_decides_the_number_of_layers():
    budget = RUNTIME_OVERHEAD_BYTES + 100 * MB + 10 * 14 * MB
    assert layers_that_fit(budget, 14 * MB, 100 * MB, 30) == 10
    assert layers_that_fit(100 << 30, 14 * MB, 100 * MB, 30) == 30
    with pytest.raises(ConfigError):
        layers_that_fit(RUNTIME_OVERHEAD_BYTES, 14 * MB, 100 * MB, 30)


def test_the_least_served_aligned_window_is_chosen():
    assert choose_span(30, 10, []) == (0, 10)
    assert choose_span(30, 10, [(0, 10), (20, 30)]) == (10, 20)
    assert choose_span(30, 10, [(0, 10), (10, 20)]) == (20, 30)
    # A gap narrower than the node still gets covered from an existing boundary.
    assert choose_span(30, 16, [(0, 7), (23, 30), (0, 30)]) == (7, 23)


def test_a_node_bigger_than_the_model_takes_all_of_it():
    assert choose_span(30, 40, [(0, 10)]) == (0, 30)
