"""``POST /jobs/{job_id}/receipts``: the client hands a dead last hop's receipts to a survivor.

The body is ``{"receipts": [[hex, ...], ...]}``: one list per step the client got an answer
for, each the step's receipt chain from hop 0 on. Only shape and syntax are checked here;
whether the receipts are genuine is the node's business (``sharedllm.node.handoff``).
"""

from __future__ import annotations

from typing import Any

from sharedllm.errors import ProtocolError
from sharedllm.protocol.receipts import Receipt

MAX_STEPS = 1 << 16  # a job's max tokens fit a uint32, but one step carries at least a token
MAX_HOPS = 255  # the JobMarket's route limit


def handoff_body(steps: dict[int, list[str]]) -> dict[str, Any]:
    """The request body for the receipts the client kept, in step order."""
    return {"receipts": [list(steps[s]) for s in sorted(steps)]}


def parse_handoff(body: Any) -> list[list[Receipt]]:
    if not isinstance(body, dict) or set(body) != {"receipts"}:
        raise ProtocolError("body: expected exactly {'receipts': [...]}", field="receipts")
    steps = body["receipts"]
    if not isinstance(steps, list) or not steps or len(steps) > MAX_STEPS:
        raise ProtocolError(
            f"receipts: expected 1..{MAX_STEPS} lists, one per step", field="receipts"
        )
    parsed = []
    for i, chain in enumerate(steps):
        if not isinstance(chain, list) or len(chain) > MAX_HOPS:
            raise ProtocolError(
                f"receipts[{i}]: expected a list of at most {MAX_HOPS} hex receipts",
                field="receipts",
            )
        parsed.append([Receipt.from_hex(r) for r in chain])
    return parsed
