"""``python -m sharedllm.demo`` runs start to finish and leaves no process behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.chain


def test_demo_stakes_three_nodes_and_exits_cleanly(sharedllm_home: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sharedllm.demo"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SHAREDLLM_HOME": str(sharedllm_home)},
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for span in ("0:10", "10:20", "20:30"):
        assert re.search(rf"layers\s+{span}\s", out), span
    assert "escrow 100 SHARE" in out
    assert "devnet stopped" in out
