"""How long a step may take, handed down the route with the step.

The client gives every step a budget (``meta.budget_ms``): how long it will wait for the
whole route behind the hop it sends to. Each hop spends part of the budget computing, keeps
``HOP_MARGIN_S`` to pass a failure back, hands the rest to the next hop, and waits for that
hop half a margin past the budget it handed on. So the hop just before a stalled one gives
up first and names it, and its error reaches the client before anyone upstream gives up on
a healthy hop. A node never waits longer than its own ``--step-timeout`` allows, whatever a
client asks.
"""

from __future__ import annotations

from typing import Any

from sharedllm.errors import ProtocolError

HOP_MARGIN_S = 1.0
MIN_BUDGET_MS = 500
MAX_BUDGET_MS = 600_000


def parse_budget(meta: dict[str, Any]) -> float | None:
    """A step frame's budget in seconds, or None when the sender gave none."""
    if "budget_ms" not in meta:
        return None
    value = meta["budget_ms"]
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not MIN_BUDGET_MS <= value <= MAX_BUDGET_MS
    ):
        raise ProtocolError(
            f"meta.budget_ms: expected an integer in [{MIN_BUDGET_MS}, {MAX_BUDGET_MS}]",
            field="meta.budget_ms",
        )
    return value / 1000.0


def budget_ms(seconds: float) -> int:
    """A budget in seconds as the frame carries it, within the protocol's bounds."""
    return min(MAX_BUDGET_MS, max(MIN_BUDGET_MS, round(seconds * 1000.0)))


def next_budget(budget_s: float, spent_s: float) -> float:
    """What a hop that received ``budget_s`` and spent ``spent_s`` hands the next hop."""
    return max(MIN_BUDGET_MS / 1000.0, budget_s - spent_s - HOP_MARGIN_S)


def wait_for(handed_s: float) -> float:
    """How long to wait for a hop that was handed ``handed_s``: it gives up on its own next
    hop earlier, and its answer (a failure naming that hop) needs time to come back."""
    return handed_s + HOP_MARGIN_S / 2
