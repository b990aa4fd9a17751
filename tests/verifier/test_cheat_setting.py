"""Cheating is off unless a test asks for it by name."""

from __future__ import annotations

import pytest

from sharedllm.errors import ConfigError
from sharedllm.verifier.cheats import ENV_VAR, CheatMode, parse_cheat, runner_from_env


class _Runner:
    """Stands in for a SpanRunner: without the setting it must come back untouched."""


def test_no_setting_means_no_cheating(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    runner = _Runner()
    assert runner_from_env(runner) is runner


def test_empty_setting_means_no_cheating(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "")
    runner = _Runner()
    assert runner_from_env(runner) is runner


@pytest.mark.parametrize(
    ("text", "mode", "rate"),
    [("skip_layer", CheatMode.SKIP_LAYER, 1.0), ("bf16:0.05", CheatMode.BF16, 0.05)],
)
def test_setting_is_parsed(text, mode, rate):
    assert parse_cheat(text) == (mode, rate)


@pytest.mark.parametrize("text", ["skip", "random:0", "random:1.5", "int8:often"])
def test_bad_setting_is_refused_naming_the_variable(text):
    with pytest.raises(ConfigError) as info:
        parse_cheat(text)
    assert info.value.details["field"] == ENV_VAR
