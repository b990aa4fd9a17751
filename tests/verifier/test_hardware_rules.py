"""The tolerance rule per (node class, verifier class, precision), and its calibration from
score distributions (synthetic here: what bench/detection.py would measure on two classes)."""

from __future__ import annotations

import numpy as np
import pytest

from sharedllm.verifier.hardware_rules import (
    CHEAT_MARGIN,
    HONEST_MARGIN,
    RULES,
    Rule,
    calibrate,
    rule_for,
)
from sharedllm.verifier.tolerance import DEFAULT_THRESHOLD


def _scores(median: float, spread: float, n: int, seed: int) -> list[float]:
    """Worst-position scores, log-normal around ``median`` as bench/detection.py sees them."""
    rng = np.random.default_rng(seed)
    return list(median * np.exp(spread * rng.standard_normal(n)))


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_cpu_checks_cpu_with_the_measured_threshold(precision):
    rule = rule_for("cpu", "cpu", precision)
    assert rule.threshold == DEFAULT_THRESHOLD and rule.basis.startswith("measured")


@pytest.mark.parametrize(
    "node, verifier",
    [("cuda-sm86", "cpu"), ("cpu", "cuda-sm90"), ("cuda-sm86", "cuda-sm90"), ("mps", "cpu")],
)
def test_an_unmeasured_pair_has_no_threshold(node, verifier):
    rule = rule_for(node, verifier, "float32")
    assert rule.threshold is None and "unmeasured" in rule.basis


def test_a_pair_no_rule_names_is_not_checked():
    assert rule_for("tpu-v5", "cpu", "float32").threshold is None
    assert rule_for("cpu", "cpu", "float32", rules=()).basis == "no rule names this pair"


def test_the_measured_cpu_distributions_calibrate_to_the_threshold_in_use():
    """Honest CPU checks near 1e-6 (worst 2e-6) and the mildest cheat at 1.2e-2, as measured:
    the calibration lands at the threshold the verifier uses, within 25%."""
    honest = _scores(1.1e-6, 0.25, 300, seed=1)
    honest[0] = 2.0e-6
    cheats = {"bf16": [1.2e-2, 1.3e-2, 1.7e-2], "int8": [4.5e-2, 6.3e-2]}
    rule = calibrate("cpu", "cpu", "float32", honest, cheats)
    assert rule.threshold == pytest.approx(DEFAULT_THRESHOLD, rel=0.25)
    assert "bf16" in rule.basis


def test_a_gpu_pair_far_apart_gets_a_looser_threshold_that_still_catches_every_cheat():
    """Honest noise five times a CPU pair's (5e-6) against the same cheats: a threshold
    exists, above every honest score and below every cheat, with both margins."""
    honest = _scores(5e-6, 0.3, 500, seed=2)
    cheats = {"bf16": _scores(3e-2, 0.2, 50, seed=3), "skip_layer": _scores(0.6, 0.1, 50, seed=4)}
    rule = calibrate("cuda-sm86", "cpu", "float32", honest, cheats)
    assert rule.threshold is not None
    assert rule.threshold >= HONEST_MARGIN * max(honest)
    assert all(s >= CHEAT_MARGIN * rule.threshold for v in cheats.values() for s in v)
    false_positives = sum(s > rule.threshold for s in honest)
    detected = sum(s > rule.threshold for v in cheats.values() for s in v)
    assert false_positives == 0 and detected == 100


def test_a_pair_whose_honest_noise_reaches_the_cheats_has_no_rule():
    """bf16 kernels on the node against a float32 verifier round about as much as the bf16
    cheat: no threshold separates them, so such a hop is left to a verifier of its class."""
    honest = _scores(5e-3, 0.3, 200, seed=5)
    cheats = {"bf16": _scores(1.3e-2, 0.2, 20, seed=6)}
    rule = calibrate("cuda-sm86", "cpu", "float32", honest, cheats)
    assert rule.threshold is None and "too close" in rule.basis


@pytest.mark.parametrize(
    "honest, cheats",
    [([], {"bf16": [1e-2]}), ([1e-6], {}), ([1e-6], {"bf16": []}), ([float("nan")], {"x": [1.0]})],
)
def test_calibration_needs_real_distributions(honest, cheats):
    assert calibrate("cpu", "cpu", "float32", honest, cheats).threshold is None


def test_every_rule_is_a_pattern_triple_with_a_basis():
    for rule in RULES:
        assert isinstance(rule, Rule) and rule.basis
        assert rule.threshold is None or rule.threshold > 0
        assert not rule.tf32  # nodes turn TF32 off; a TF32 rule would say so
