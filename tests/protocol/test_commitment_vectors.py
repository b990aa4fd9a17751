"""The commitment and the over-charge walk, in Python and in the JobMarket, on one set of
vectors (``tests/vectors/commitments.json``; ``contracts/test/CommitmentVectors.t.sol`` checks
the same values against the contract)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sharedllm.protocol.receipts import Receipt, job_commitment, proven_positions

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "commitments.json").read_text())


@pytest.mark.parametrize("case", VECTORS, ids=[c["name"] for c in VECTORS])
def test_python_commits_and_walks_as_the_contract_does(case: dict) -> None:
    receipts = [Receipt.from_hex(r) for r in case["receipts"]]
    preimage = b"".join(r.to_bytes() for r in sorted(receipts, key=lambda r: (r.step, r.hop)))
    assert "0x" + preimage.hex() == case["preimage"]
    assert "0x" + job_commitment(receipts).hex() == case["commitment"]
    ordered = sorted(receipts, key=lambda r: (r.step, r.hop))
    job = bytes.fromhex(case["jobId"][2:])
    assert proven_positions(job, case["hops"], ordered) == case["provenPositions"]
