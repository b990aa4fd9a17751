"""Which jobs a verifier checks: deterministic per (block, job, verifier), at the asked rate."""

from __future__ import annotations

import hashlib
import math

import pytest

from sharedllm.errors import ConfigError
from sharedllm.verifier.selection import SelectionPolicy, parse_probability, random_value

VERIFIER = "0x" + "ab" * 20
OTHER_VERIFIER = "0x" + "cd" * 20


def _hash(i: int, tag: bytes = b"block") -> bytes:
    return hashlib.sha256(tag + i.to_bytes(8, "big")).digest()


def _job(i: int) -> str:
    return "0x" + _hash(i, b"job").hex()


def test_the_same_inputs_give_the_same_draw() -> None:
    policy = SelectionPolicy(0.5)
    first = policy.draw(_hash(1), _job(1), VERIFIER)
    assert policy.draw(_hash(1), _job(1), VERIFIER) == first
    assert SelectionPolicy(0.5).draw(_hash(1), _job(1), VERIFIER) == first


def test_the_draw_depends_on_the_block_the_job_and_the_verifier() -> None:
    base = random_value(_hash(1), _job(1), VERIFIER)
    assert random_value(_hash(2), _job(1), VERIFIER) != base
    assert random_value(_hash(1), _job(2), VERIFIER) != base
    assert random_value(_hash(1), _job(1), OTHER_VERIFIER) != base


def test_ten_thousand_blocks_at_p_one_tenth_select_about_a_tenth() -> None:
    n, p = 10_000, 0.1
    policy = SelectionPolicy(p)
    selected = sum(policy.draw(_hash(i), _job(i), VERIFIER).selected for i in range(n))
    sigma = math.sqrt(n * p * (1 - p))  # 30
    assert abs(selected - n * p) < 4 * sigma, selected


def test_two_verifiers_pick_different_samples() -> None:
    a, b = SelectionPolicy(0.1), SelectionPolicy(0.1)
    picks_a = {i for i in range(2000) if a.draw(_hash(i), _job(i), VERIFIER).selected}
    picks_b = {i for i in range(2000) if b.draw(_hash(i), _job(i), OTHER_VERIFIER).selected}
    # Independent samples of ~200 out of 2000 overlap in ~20 jobs, not in ~200.
    assert len(picks_a & picks_b) < 60


def test_probability_one_checks_every_job_and_zero_none() -> None:
    always, never = SelectionPolicy(1.0), SelectionPolicy(0.0)
    worst = b"\xff" * 32
    for i in range(200):
        assert always.draw(_hash(i), _job(i), VERIFIER).selected
        assert not never.draw(_hash(i), _job(i), VERIFIER).selected
    assert always.threshold == 1 << 256
    assert always.draw(worst, _job(0), VERIFIER).selected


def test_the_draw_is_recorded_as_32_bytes_of_hex() -> None:
    draw = SelectionPolicy(0.3).draw(_hash(7), _job(7), VERIFIER)
    assert len(draw.hex) == 66 and int(draw.hex, 16) == draw.value


@pytest.mark.parametrize("text", ["-0.1", "1.5", "abc", "nan", ""])
def test_a_bad_probability_is_refused_naming_the_option(text: str) -> None:
    with pytest.raises(ConfigError, match="--probability"):
        parse_probability(text)
