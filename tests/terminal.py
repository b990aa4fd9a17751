"""A program run on a real pseudo-terminal, as a person runs it: its output as the terminal
shows it, and keys typed into it. Bounded: every wait has a deadline, and the process is
killed on close."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import subprocess
import termios
import time
from collections.abc import Sequence


def _take_terminal() -> None:
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # the pty becomes the controlling terminal


class Terminal:
    def __init__(self, argv: Sequence[str], env: dict[str, str], timeout: float = 60) -> None:
        self.master, slave = pty.openpty()
        self.timeout = timeout
        self.output = ""
        self._seen = 0  # where the next expect starts looking
        self.process = subprocess.Popen(
            list(argv), stdin=slave, stdout=slave, stderr=slave, env=env,
            preexec_fn=_take_terminal, close_fds=True,
        )  # fmt: skip
        os.close(slave)

    def expect(self, text: str) -> str:
        """Read until ``text`` is shown after what earlier expects matched (keys typed before
        a hidden prompt shows would be flushed by it); returns everything shown so far."""
        deadline = time.monotonic() + self.timeout
        while (found := self.output.find(text, self._seen)) < 0:
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError(f"never showed {text!r}; showed:\n{self.output}")
        self._seen = found + len(text)
        return self.output

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def wait(self) -> int:
        """Read to the end and return the exit status."""
        deadline = time.monotonic() + self.timeout
        while self._read(max(0.0, deadline - time.monotonic())):
            pass
        return self.process.wait(timeout=max(1.0, deadline - time.monotonic()))

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the program closed the terminal
            return False
        self.output += chunk.decode(errors="replace").replace("\r\n", "\n")
        return bool(chunk)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        os.close(self.master)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
