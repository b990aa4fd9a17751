"""One casing rule for error codes, checked over the package's source.

Our codes are UPPER_SNAKE_CASE. The exception is the family of the contracts' checks: a
node, a client or the chain wrapper that refuses something the contracts would refuse uses
the contract's custom error name, verbatim (PascalCase), so that the node's refusal and the
chain's revert read the same; a few checks of that family exist only off-chain and are
named the same way. OpenAI's lowercase codes appear only as the gateway's translation.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import sharedllm

PACKAGE = Path(sharedllm.__file__).parent
# Off-chain members of the contracts' family: a job without one (JobRequired), a deadline
# past the market's maxJobTtl (DeadlineTooFar), a withdrawal never requested
# (NoWithdrawalRequested), and a revert the decoder cannot name (UnknownRevert).
OFF_CHAIN_FAMILY = {"JobRequired", "DeadlineTooFar", "NoWithdrawalRequested", "UnknownRevert"}
_LITERAL = re.compile(r'\bcode\s*=\s*"([^"]*)"')
_UPPER = re.compile(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)*")


def _contract_errors() -> set[str]:
    names = set()
    for artifact in (PACKAGE / "chain" / "artifacts").glob("*.json"):
        names |= {
            e["name"] for e in json.loads(artifact.read_text())["abi"] if e["type"] == "error"
        }
    return names


def test_every_code_is_upper_snake_or_a_contract_error_name() -> None:
    contract = _contract_errors() | OFF_CHAIN_FAMILY
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for code in _LITERAL.findall(path.read_text()):
            found.setdefault(code, set()).add(str(path.relative_to(PACKAGE)))
    assert len(found) > 50, "the scan finds the package's codes"
    wrong = {
        c: sorted(p) for c, p in found.items() if not _UPPER.fullmatch(c) and c not in contract
    }
    assert not wrong, f"codes outside the rule: {wrong}"


def test_the_gateway_translates_to_openai_codes_only_at_its_edge() -> None:
    from sharedllm.gateway import openai_api

    for ours, theirs in openai_api.OPENAI_CODES.items():
        assert _UPPER.fullmatch(ours) and theirs == ours.lower()
