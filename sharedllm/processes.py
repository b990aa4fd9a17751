"""Our own programs as child processes, for tests, benchmarks and the demo.

Each program (``sharedllm-node run``, ``sharedllm-verifier run``, ``sharedllm serve``) prints
one ``ready <url> ...`` line once it serves. A ``Child`` keeps every line it prints, waits for
that one, and stops it with SIGTERM (SIGKILL if it does not go). Children get their own
session, so a terminal's Ctrl-C reaches only the parent, which then stops them in order.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from sharedllm.errors import PeerError

READY_TIMEOUT_S = 120.0


def program(name: str) -> list[str]:
    """The command that runs one of our programs from this interpreter's environment."""
    exe = Path(sys.executable).with_name(name)
    if exe.exists():
        return [str(exe)]
    entry = name.replace("-", "_")  # the console-script function in sharedllm.cli
    return [sys.executable, "-c", f"from sharedllm.cli import {entry}; {entry}()"]


class Child:
    """A spawned program whose output is read on a thread as it comes."""

    def __init__(self, command: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.began = time.perf_counter()
        self.process = subprocess.Popen(
            list(command),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.ready_line: str | None = None
        self.ready_s = 0.0  # wall-clock seconds from spawn to the ready line
        self._done = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip())
            if line.startswith("ready ") and self.ready_line is None:
                self.ready_s = time.perf_counter() - self.began
                self.ready_line = line.rstrip()
                self._done.set()
        self._done.set()  # it exited without saying ready

    def wait_ready(self, what: str, timeout: float = READY_TIMEOUT_S) -> str:
        """The ready line; on a timeout or an early exit, kill it and raise with its output."""
        self._done.wait(timeout)
        if self.ready_line is None:
            self.kill()
            tail = "\n".join(self.lines[-30:])
            raise PeerError(f"{what} did not become ready:\n{tail}")
        return self.ready_line

    @property
    def url(self) -> str:
        assert self.ready_line is not None
        return self.ready_line.split()[1]

    def kill(self) -> None:
        """SIGKILL, as a crash would: no goodbye to peers or clients."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self) -> None:
        """Ask it to stop (SIGTERM), without waiting; see ``wait_stopped``."""
        if self.process.poll() is None:
            self.process.terminate()

    def wait_stopped(self, timeout: float = 15.0) -> None:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def stop(self, timeout: float = 15.0) -> None:
        self.terminate()
        self.wait_stopped(timeout)

    def wait_exit(self, timeout: float = 60.0) -> int:
        return self.process.wait(timeout)
