"""``sharedllm-node run`` through a node host (see ``sharedllm.node.host``).

The run command stays in the foreground for as long as its node lives: it passes on the
signals it gets, and exits with the node's status. If the host cannot start the node (none
listens, it imported other code, it fails), the run command says why and runs the node in its
own process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from sharedllm import paths
from sharedllm.cli_base import prompt_secret
from sharedllm.errors import NodeHostError
from sharedllm.node.host_wire import (
    STDIO_FDS,
    RunRequest,
    code_fingerprint,
    fits_unix_socket,
    recv_message,
    send_request,
)

CONNECT_TIMEOUT_S = 30.0
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
KILLED = 128 + signal.SIGKILL  # what a shell reports for a process killed by SIGKILL


def run_in_host(socket_file: Path, argv: list[str], *, needs_password: bool) -> int | None:
    """The node's exit status; None when no host listening at ``socket_file`` starts it.

    Whatever goes wrong before the node runs (nobody listens, the host runs other code,
    crashed or refused) only costs the fast start: the caller then runs the node itself.
    """
    if not fits_unix_socket(socket_file) or not socket_file.exists():
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(CONNECT_TIMEOUT_S)
        try:
            sock.connect(str(socket_file))
        except OSError as exc:
            _notice(f"no node host answers at {socket_file} ({exc.strerror})")
            return None
        env = dict(os.environ)
        if needs_password and paths.PASSWORD_ENV not in env and sys.stdin.isatty():
            env[paths.PASSWORD_ENV] = prompt_secret("keystore password")
        umask = os.umask(0)
        os.umask(umask)
        request = RunRequest([*argv, "--no-host"], env, os.getcwd(), umask, code_fingerprint())
        try:
            with _stdio() as fds:
                send_request(sock, request, fds)
            first = recv_message(sock)
        except (OSError, NodeHostError) as exc:
            _notice(f"the node host at {socket_file} failed: {exc}")
            return None
        if first is None:
            _notice(f"the node host at {socket_file} closed the connection")
            return None
        if "error" in first:
            error = first["error"] if isinstance(first["error"], dict) else {}
            _notice(f"the node host refused: [{error.get('code')}] {error.get('message')}")
            return None
        pid = first.get("pid")
        if type(pid) is not int or pid <= 0:
            raise NodeHostError(f"node host answered {first!r}", code="HOST_BAD_ANSWER")
        return _follow(sock, pid)


@contextlib.contextmanager
def _stdio() -> Iterator[list[int]]:
    """Descriptors 0, 1 and 2, with /dev/null standing in for any that is closed."""
    opened: list[int] = []
    fds = []
    for fd in STDIO_FDS:
        try:
            os.fstat(fd)
        except OSError:
            opened.append(os.open(os.devnull, os.O_RDWR))
            fd = opened[-1]
        fds.append(fd)
    try:
        yield fds
    finally:
        for fd in opened:
            os.close(fd)


def _follow(sock: socket.socket, pid: int) -> int:
    """Wait for the node's exit status, passing on the signals this process gets."""

    def forward(signum: int, frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    sock.settimeout(None)
    try:
        message = recv_message(sock)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if message is None:
        _notice(f"node {pid} ended without an exit status (killed)")
        return KILLED
    code = message.get("exit")
    if type(code) is not int:
        raise NodeHostError(f"node host answered {message!r}", code="HOST_BAD_ANSWER")
    return code


def _notice(text: str) -> None:
    print(f"sharedllm-node: {text}", file=sys.stderr, flush=True)
