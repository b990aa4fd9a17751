"""The node's copy of the market's pricing rule (``chain/terms_lock.hop_price``), which the
batch poster prices each hop by: the registered terms, or for a job that may have been
sent before a node's last change of terms, the terms it had then. The contract's own rule is
tested in ``contracts/test/RegistrationChanges.t.sol``; these cases are the same."""

from __future__ import annotations

import pytest

from sharedllm.chain.registry import NodeInfo, Terms
from sharedllm.chain.terms_lock import hop_price
from sharedllm.errors import JobRejected
from sharedllm.protocol.job import Job

MODEL = "0x" + "5e" * 32
PRICE = 10**12
TTL = 600
CHANGED_AT = 1_000_000


def _job(deadline: int, cap: int = PRICE) -> Job:
    return Job.from_json({
        "modelId": MODEL, "route": ["0x" + "11" * 20, "0x" + "22" * 20],
        "spanStarts": [0, 10], "spanEnds": [10, 30], "maxTokens": 8, "maxPricePerToken": cap,
        "nonce": 1, "deadline": deadline, "client": "0x" + "33" * 20,
    })  # fmt: skip


def _node(start: int, end: int, price: int, model: str = MODEL) -> NodeInfo:
    return NodeInfo("0x" + "22" * 20, 0, "https://n:1", "0x" + "00" * 32, model, start, end,
                    price, "Active", 0)  # fmt: skip


OLD = Terms(MODEL, 10, 30, PRICE)


def test_the_registered_terms_price_a_job_that_fits_them() -> None:
    assert hop_price(_job(CHANGED_AT + 10), 1, _node(0, 30, PRICE // 2), OLD, CHANGED_AT, TTL) == (
        PRICE // 2
    )


def test_a_job_sent_before_a_change_is_priced_by_the_terms_it_was_sent_under() -> None:
    repriced, moved = _node(10, 30, 5 * PRICE), _node(0, 10, PRICE)
    for deadline in (CHANGED_AT - 5, CHANGED_AT + TTL):  # at most the change plus a job
        assert hop_price(_job(deadline), 1, repriced, OLD, CHANGED_AT, TTL) == PRICE
        assert hop_price(_job(deadline), 1, moved, OLD, CHANGED_AT, TTL) == PRICE


@pytest.mark.parametrize(
    ("node", "code"),
    [
        (_node(10, 30, 5 * PRICE), "PriceAboveCap"),
        (_node(0, 10, PRICE), "SpanMismatch"),
        (_node(10, 30, PRICE, model="0x" + "6f" * 32), "ModelMismatch"),
    ],
)
def test_a_job_newer_than_the_change_must_fit_the_new_terms(node: NodeInfo, code: str) -> None:
    with pytest.raises(JobRejected) as refused:
        hop_price(_job(CHANGED_AT + TTL + 1), 1, node, OLD, CHANGED_AT, TTL)
    assert refused.value.code == code
    with pytest.raises(JobRejected):  # nor can a node that never changed fall back on anything
        hop_price(_job(CHANGED_AT), 1, node, Terms(MODEL, 0, 0, 0), 0, TTL)
