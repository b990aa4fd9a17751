"""``python -m sharedllm.demo`` (what ``make demo`` runs) answers a paid prompt end to end,
settles it, and leaves no process behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.chain, pytest.mark.model, pytest.mark.nodes]


def _children_named(pattern: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if re.search(pattern, line)]


def test_demo_answers_a_paid_prompt_and_settles_it(model_home: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sharedllm.demo"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SHAREDLLM_HOME": str(model_home)},
        start_new_session=True,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    for span in ("0:10", "10:20", "20:30"):
        assert re.search(rf"layers\s+{span}\s", out), span
    assert "answer: The capital of France is Paris." in out
    job = re.search(r"job:\s+(0x[0-9a-f]{64})", out)
    assert job, out
    assert re.search(r"batch #\d+: 1 client entry\(ies\), tx 0x[0-9a-f]{64}", out), out
    assert re.search(r"posting cost [\d,]+ gas", out)
    assert (
        len(
            re.findall(
                r"paid 0x[0-9a-fA-F]{40}: [\d.]+ SHARE \+ reward [\d.]+ SHARE \(batch #\d+\)", out
            )
        )
        == 3
    )
    assert "verdict: passed" in out
    assert "network stopped" in out
    assert [line for line in (out + result.stderr).splitlines() if "Warning" in line] == []
    leftovers = _children_named(r"sharedllm-(node|verifier) run .*--deployment /tmp/sharedllm-net-")
    assert leftovers == []
