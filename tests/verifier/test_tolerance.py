"""The comparison statistic on made-up hidden states shaped like the model's."""

from __future__ import annotations

import numpy as np
import pytest

from sharedllm.verifier.tolerance import TolerancePolicy, relative_error


def _hidden(positions: int = 6, width: int = 576, seed: int = 0) -> np.ndarray:
    """Ordinary channels near 1 and two outlier channels near 2.5e4, as at span 10:20."""
    rng = np.random.default_rng(seed)
    hidden = rng.standard_normal((positions, width)).astype(np.float32)
    hidden[:, [17, 301]] = 2.5e4
    return hidden


def test_float_noise_passes():
    ours = _hidden()
    theirs = ours * (1 + 1e-6 * np.random.default_rng(1).standard_normal(ours.shape))
    policy = TolerancePolicy()
    assert policy.passes(policy.position_scores(theirs, ours)).all()


def test_changing_every_ordinary_channel_is_caught_despite_the_outliers():
    """The full norm is dominated by two huge channels; the robust part is what sees this."""
    ours = _hidden()
    theirs = ours.copy()
    theirs[:, :17] *= 1.5
    theirs[:, 18:301] *= 1.5
    theirs[:, 302:] *= 1.5
    policy = TolerancePolicy()
    assert relative_error(theirs, ours).max() < policy.threshold
    assert not policy.passes(policy.position_scores(theirs, ours)).any()


def test_one_changed_position_is_the_one_flagged():
    ours = _hidden()
    theirs = ours.copy()
    theirs[4, 100] += 3.0
    policy = TolerancePolicy()
    failing = np.flatnonzero(~policy.passes(policy.position_scores(theirs, ours)))
    assert failing.tolist() == [4]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_never_passes(bad):
    ours = _hidden()
    theirs = ours.copy()
    theirs[2, 5] = bad
    scores = TolerancePolicy().position_scores(theirs, ours)
    assert scores[2] == np.inf
    assert not TolerancePolicy().passes(scores)[2]


def test_a_stricter_policy_can_be_swapped_in():
    ours = _hidden()
    theirs = ours * (1 + 1e-4)
    assert TolerancePolicy().passes(TolerancePolicy().position_scores(theirs, ours)).all()
    strict = TolerancePolicy(threshold=1e-5)
    assert not strict.passes(strict.position_scores(theirs, ours)).any()


def test_policy_refuses_a_non_positive_threshold():
    with pytest.raises(ValueError):
        TolerancePolicy(threshold=0)
