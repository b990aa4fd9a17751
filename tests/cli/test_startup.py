"""Start-up stays fast: building the programs and printing any help imports none of the
heavy libraries, which load only when a command runs (their import costs seconds).
`bench/cli_startup.py` measures the time itself against a bare interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "torchao", "web3", "eth_account", "aiohttp", "numpy",
         "nacl", "cryptography", "sqlite_utils", "safetensors")  # fmt: skip

PROBE = """
import contextlib, io, json, sys
from sharedllm.cli import {main}
for words in {words!r}:
    with contextlib.redirect_stdout(io.StringIO()):
        assert {main}(words) == 0, words
print(json.dumps([m for m in {heavy!r} if m in sys.modules]))
"""


@pytest.mark.parametrize(
    ("main", "words"),
    [
        ("sharedllm_main", [["--help"], ["generate", "--help"], ["serve", "keys", "--help"],
                            ["completion", "bash"]]),
        ("node_main", [["--help"], ["run", "--help"], ["stake", "--help"]]),
        ("verifier_main", [["--help"], ["run", "--help"]]),
    ],
)  # fmt: skip
def test_help_imports_no_heavy_library(main: str, words: list[list[str]]) -> None:
    code = PROBE.format(main=main, words=words, heavy=HEAVY)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert json.loads(out.splitlines()[-1]) == []
