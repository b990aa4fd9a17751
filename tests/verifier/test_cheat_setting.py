"""Cheating is a part a test hands a node by name; nothing an operator runs can turn it on."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import sharedllm
from sharedllm.errors import ConfigError
from sharedllm.testing.cheats import FIELD, CheatingRunner, CheatMode, cheating_wrapper, parse_cheat


class _Runner:
    """Stands in for a SpanRunner (what the wrapper reads off one)."""

    layers: list = []
    manifest = start = end = rotary = config = hidden_size = None


def test_a_wrapper_cheats_as_its_setting_says():
    cheat = cheating_wrapper("random:0.5", seed=3)(_Runner())
    assert isinstance(cheat, CheatingRunner)
    assert (cheat.mode, cheat.rate) == (CheatMode.RANDOM, 0.5)


@pytest.mark.parametrize(
    ("text", "mode", "rate"),
    [("skip_layer", CheatMode.SKIP_LAYER, 1.0), ("bf16:0.05", CheatMode.BF16, 0.05)],
)
def test_setting_is_parsed(text, mode, rate):
    assert parse_cheat(text) == (mode, rate)


@pytest.mark.parametrize("text", ["skip", "random:0", "random:1.5", "int8:often"])
def test_bad_setting_is_refused_naming_the_field(text):
    with pytest.raises(ConfigError) as info:
        parse_cheat(text)
    assert info.value.details["field"] == FIELD


def test_no_module_an_operator_runs_reads_a_test_switch_from_the_environment():
    """Test doubles used to be switched on by SHAREDLLM_TEST_* variables on the compute and
    settlement paths; they are handed in now, and the package outside ``testing`` names no
    such variable."""
    root = Path(sharedllm.__file__).parent
    found = subprocess.run(
        ["grep", "-rln", "SHAREDLLM_TEST_", str(root), "--include=*.py"],
        capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    outside = [f for f in found if "/testing/" not in f]
    assert outside == [], outside
