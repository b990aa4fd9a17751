"""Start node processes on this machine (tests, benchmarks, the demo) and always stop them.

Each node is a real ``sharedllm-node run`` process; we wait for its "ready <url>" line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sharedllm.errors import PeerError

READY_TIMEOUT_S = 120.0


@dataclass
class LocalNode:
    process: subprocess.Popen
    url: str
    span: tuple[int, int]
    ready_s: float  # wall-clock seconds from spawn to the ready line
    log: list[str] = field(default_factory=list)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no goodbye to peers or clients."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def _node_command() -> list[str]:
    exe = Path(sys.executable).with_name("sharedllm-node")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "from sharedllm.cli import sharedllm_node; sharedllm_node()"]


class _Starting:
    """A spawned node whose output we read until it says it is ready."""

    def __init__(self, layers: str, extra: Sequence[str], env: dict[str, str] | None) -> None:
        self.layers = layers
        self.began = time.perf_counter()
        self.proc = subprocess.Popen(
            [*_node_command(), "run", "--layers", layers, "--port", "0", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.ready_line: str | None = None
        self.ready_s = 0.0
        self.done = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            if line.startswith("ready ") and self.ready_line is None:
                self.ready_s = time.perf_counter() - self.began
                self.ready_line = line
                self.done.set()
        self.done.set()

    def wait(self) -> LocalNode:
        self.done.wait(READY_TIMEOUT_S)
        if self.ready_line is None:
            self.proc.kill()
            self.proc.wait(10)
            tail = "\n".join(self.lines[-30:])
            raise PeerError(f"node {self.layers} did not become ready:\n{tail}")
        words = self.ready_line.split()
        layers = next(w for w in words if w.startswith("layers=")).split("=")[1]
        start, end = (int(x) for x in layers.split(":"))
        return LocalNode(self.proc, words[1], (start, end), self.ready_s, self.lines)


def start_node(layers: str, *extra: str, env: dict[str, str] | None = None) -> LocalNode:
    return _Starting(layers, extra, env).wait()


@contextlib.contextmanager
def local_nodes(
    spans: Sequence[str], *extra: str, env: dict[str, str] | None = None
) -> Iterator[list[LocalNode]]:
    """Start one node per span ("0:10", ...), yield them, and stop them even on failure."""
    starting = [_Starting(span, extra, env) for span in spans]
    nodes: list[LocalNode] = []
    try:
        nodes.extend(s.wait() for s in starting)
        yield nodes
    finally:
        for s in starting:
            if s.proc.poll() is None:
                s.proc.terminate()
        for s in starting:
            try:
                s.proc.wait(10)
            except subprocess.TimeoutExpired:
                s.proc.kill()
                s.proc.wait(10)
