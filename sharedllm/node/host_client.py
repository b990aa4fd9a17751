"""``sharedllm-node run`` through a node host (see ``sharedllm.node.host``).

The run command stays in the foreground for as long as its node lives: it passes on the
signals it gets, and exits with the node's status. With no host listening, or a host that
imported other code, it says so and the node runs in the run command's own process.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import signal
import socket
import sys
from pathlib import Path

from sharedllm import paths
from sharedllm.errors import NodeHostError
from sharedllm.node.host_wire import (
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
    """The node's exit status, or None when no usable host listens at ``socket_file``."""
    if not fits_unix_socket(socket_file) or not socket_file.exists():
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(CONNECT_TIMEOUT_S)
    try:
        sock.connect(str(socket_file))
    except (ConnectionRefusedError, FileNotFoundError):
        sock.close()
        _notice(f"no node host answers at {socket_file}; starting the node in this process")
        return None
    with sock:
        env = dict(os.environ)
        if needs_password and paths.PASSWORD_ENV not in env and sys.stdin.isatty():
            env[paths.PASSWORD_ENV] = getpass.getpass("keystore password: ")
        umask = os.umask(0)
        os.umask(umask)
        request = RunRequest([*argv, "--no-host"], env, os.getcwd(), umask, code_fingerprint())
        try:
            send_request(sock, request)
            first = recv_message(sock)
        except OSError as exc:
            raise NodeHostError(f"node host at {socket_file} failed: {exc}") from None
        if first is None:
            raise NodeHostError(f"node host at {socket_file} closed the connection")
        if "error" in first:
            error = first["error"] if isinstance(first["error"], dict) else {}
            code, message = error.get("code", "NODE_HOST"), error.get("message", repr(first))
            if code == "HOST_STALE":
                _notice(f"{message}; starting the node in this process")
                return None
            raise NodeHostError(f"node host refused: {message}", code=str(code))
        pid = first.get("pid")
        if type(pid) is not int or pid <= 0:
            raise NodeHostError(f"node host answered {first!r}", code="HOST_BAD_ANSWER")
        return _follow(sock, pid)


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
