"""Start node processes on this machine (tests, benchmarks, the demo) and always stop them.

Each node is a real ``sharedllm-node run`` process; we wait for its "ready <url>" line.
With a node host listening (``$SHAREDLLM_NODE_HOST``), the node is a fork of the host that
the run command follows; the ready line names the node's own process either way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sharedllm.processes import Child, program


@dataclass
class LocalNode:
    child: Child
    span: tuple[int, int]
    pid: int  # the process serving: the run command's own, or its fork of a node host
    key: str | None = None  # a --tls node's key (0x + 64 hex), from its ready line

    @property
    def process(self) -> subprocess.Popen:
        return self.child.process

    @property
    def url(self) -> str:
        return self.child.url

    @property
    def pinned_url(self) -> str:
        """The URL with the node's key after a ``#``, as ``--nodes`` takes it."""
        return f"{self.url}#{self.key}" if self.key is not None else self.url

    @property
    def ready_s(self) -> float:
        """Wall-clock seconds from spawn to the ready line."""
        return self.child.ready_s

    @property
    def log(self) -> list[str]:
        return self.child.lines

    def kill(self) -> None:
        """SIGKILL, as a crash would: no goodbye to peers or clients."""
        if self.pid != self.process.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self.child.kill()

    def stop(self) -> None:
        self.child.stop(10)


class StartingNode:
    """A spawned node, not yet ready: start several, then wait for each."""

    def __init__(
        self,
        layers: str,
        extra: Sequence[str],
        env: dict[str, str] | None,
        faults: Sequence[str] = (),
        under: Sequence[str] = (),
    ) -> None:
        """``faults``: flags of ``sharedllm.testing.faulty_node`` (a cheat, a crash point);
        such a node runs as that module instead of ``sharedllm-node``. ``under``: a command
        the node runs under (``ip netns exec NS`` for a node on another host)."""
        self.layers = layers
        node = (
            [sys.executable, "-m", "sharedllm.testing.faulty_node", *faults]
            if faults
            else (program("sharedllm-node"))
        )
        command = [*under, *node, "run", "--layers", layers, "--port", "0", *extra]
        self.child = Child(command, env)

    def wait(self) -> LocalNode:
        line = self.child.wait_ready(f"node {self.layers}")
        layers = next(w for w in line.split() if w.startswith("layers=")).split("=")[1]
        start, end = (int(x) for x in layers.split(":"))
        pid = int(next(w for w in line.split() if w.startswith("pid=")).split("=")[1])
        key = next((w.split("=")[1] for w in line.split() if w.startswith("key=")), None)
        return LocalNode(self.child, (start, end), pid, key)


def start_node(layers: str, *extra: str, env: dict[str, str] | None = None) -> LocalNode:
    return StartingNode(layers, extra, env).wait()


@contextlib.contextmanager
def local_nodes(
    spans: Sequence[str], *extra: str, env: dict[str, str] | None = None
) -> Iterator[list[LocalNode]]:
    """Start one node per span ("0:10", ...), yield them, and stop them even on failure."""
    starting = [StartingNode(span, extra, env) for span in spans]
    try:
        yield [s.wait() for s in starting]
    finally:
        for s in starting:  # all at once, then wait: they shut down in parallel
            s.child.terminate()
        for s in starting:
            s.child.wait_stopped(10)


def spawn_node_host(socket_file: Path, models_dir: Path | None = None) -> Child:
    """Spawn ``sharedllm-node host``; ``wait_ready`` on it before relying on it."""
    command = [*program("sharedllm-node"), "host", "--socket", str(socket_file)]
    if models_dir is not None:
        command += ["--models-dir", str(models_dir)]
    return Child(command)
