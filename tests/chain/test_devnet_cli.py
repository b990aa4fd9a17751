"""``sharedllm devnet`` as a user runs it: it comes up, answers, and leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sharedllm.chain.connection import connect
from sharedllm.chain.deployment import Deployment
from sharedllm.chain.devnet import Devnet, free_port
from sharedllm.errors import ChainError

pytestmark = pytest.mark.chain


def _children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(status.parent.name))
    return found


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_devnet_runs_and_stops_cleanly(sharedllm_home: Path, stop_signal: signal.Signals) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", "from sharedllm.cli import sharedllm; sharedllm()",
         "devnet", "--port", str(port), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SHAREDLLM_HOME": str(sharedllm_home)},
    )  # fmt: skip
    try:
        shown = json.loads(process.stdout.readline())
        anvil_pids = _children(process.pid)
        assert anvil_pids, "anvil is not a child of the devnet command"
        deployment = Deployment.load(sharedllm_home / "deployment.json")
        assert deployment.market == shown["addresses"]["JobMarket"]
        chain = connect(f"http://127.0.0.1:{port}", deployment)
        assert chain.token.balance_of(shown["devAccounts"][3]) == 10_000 * 10**18

        process.send_signal(stop_signal)
        assert process.wait(timeout=15) == 0
        time.sleep(0.2)
        assert not [pid for pid in anvil_pids if Path(f"/proc/{pid}").exists()]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_second_devnet_on_a_busy_port_refuses() -> None:
    with Devnet() as first, pytest.raises(ChainError, match="in use"):
        Devnet(port=first.port).start_anvil()
