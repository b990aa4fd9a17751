"""A step's budget, handed down the route: strict parsing, and the ordering that makes the hop
just before a stalled one give up first."""

from __future__ import annotations

import random

import pytest

from sharedllm.errors import ProtocolError
from sharedllm.protocol import step_deadline
from sharedllm.protocol.session_msgs import parse_step_meta
from sharedllm.protocol.step_deadline import HOP_MARGIN_S, next_budget, parse_budget, wait_for


def test_a_budget_is_read_in_seconds_and_may_be_absent() -> None:
    assert parse_budget({"step": 0, "start_pos": 0, "budget_ms": 8000}) == 8.0
    assert parse_budget({"step": 0, "start_pos": 0}) is None
    assert parse_step_meta({"step": 3, "start_pos": 9, "budget_ms": 8000}) == (3, 9)


@pytest.mark.parametrize("bad", [True, 8.5, "8000", -1, 0, 499, 600_001, None, [8000]])
def test_a_bad_budget_is_refused_and_named(bad: object) -> None:
    with pytest.raises(ProtocolError) as err:
        parse_budget({"budget_ms": bad})
    assert err.value.details["field"] == "meta.budget_ms"


def test_a_budget_in_seconds_is_carried_within_bounds() -> None:
    assert step_deadline.budget_ms(8.0) == 8000
    assert step_deadline.budget_ms(0.01) == step_deadline.MIN_BUDGET_MS
    assert step_deadline.budget_ms(10_000.0) == step_deadline.MAX_BUDGET_MS


def test_every_hop_gives_up_before_the_hop_upstream_of_it() -> None:
    """Simulated routes: hop i receives the step at t_i with budget B_i, computes for c_i and
    gives up on hop i+1 at t_i + c_i + wait_for(B_{i+1}). Whichever hop stalls, the hop
    before it gives up first, and early enough for its error to travel one more link back
    before the next hop upstream gives up."""
    rng = random.Random(7)
    for _ in range(2000):
        hops = rng.randint(2, 12)
        link = rng.uniform(0.0, 0.2)  # one-way latency of every link
        budget = rng.uniform(4.0, 60.0)  # what the client hands hop 0
        give_up = [budget + HOP_MARGIN_S / 2]  # the client's wait for hop 0
        arrive = link
        for _hop in range(hops - 1):
            compute = rng.uniform(0.0, 0.2)
            handed = next_budget(budget, compute)
            if handed <= step_deadline.MIN_BUDGET_MS / 1000.0:
                break  # the route has spent its budget: later hops are not reached in time
            give_up.append(arrive + compute + wait_for(handed))
            budget, arrive = handed, arrive + compute + link
        for upstream, downstream in zip(give_up, give_up[1:], strict=False):
            # The downstream hop's error, sent when it gives up, reaches upstream in time.
            assert downstream + link < upstream, (give_up, link)
