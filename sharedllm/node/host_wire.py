"""What ``sharedllm-node run`` and the node host say to each other over a Unix socket.

The run command sends one request: a 4-byte length carrying its stdin, stdout and stderr as
SCM_RIGHTS file descriptors, then that many bytes of JSON (argv, environment, working
directory, umask and the fingerprint of the code it runs). Every answer is a 4-byte length
and a JSON object: ``{"pid": n}`` once the node runs, ``{"exit": code}`` when it ends, or
``{"error": {"code", "message"}}`` if the host will not start it.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sharedllm
from sharedllm import paths
from sharedllm.errors import NodeHostError

SOCKET_ENV = "SHAREDLLM_NODE_HOST"
SOCKET_NAME = "node-host.sock"
PROTOCOL = 1
MAX_MESSAGE = 1 << 20
STDIO_FDS = (0, 1, 2)
_LENGTH = struct.Struct(">I")
# sockaddr_un's sun_path is 108 bytes on Linux, the terminating NUL included.
_MAX_SOCKET_PATH = 107


def socket_path(explicit: Path | None = None) -> Path:
    """``explicit``, else ``$SHAREDLLM_NODE_HOST``, else ``$SHAREDLLM_HOME/node-host.sock``."""
    return explicit or Path(os.environ.get(SOCKET_ENV) or paths.home() / SOCKET_NAME)


def fits_unix_socket(path: Path) -> bool:
    return len(os.fsencode(path)) <= _MAX_SOCKET_PATH


def check_socket_path(path: Path) -> Path:
    if not fits_unix_socket(path):
        raise NodeHostError(
            f"socket path {path} is longer than Unix sockets allow ({_MAX_SOCKET_PATH} bytes): "
            f"pass a shorter --socket or set {SOCKET_ENV}",
            code="HOST_SOCKET_PATH",
        )
    return path


def code_fingerprint() -> str:
    """The interpreter and every source file of the package: a host that imported other code
    (an upgrade, an edit) must not run this command's node with it."""
    root = Path(sharedllm.__file__).parent
    digest = hashlib.sha256(f"{sys.executable}\0{sharedllm.__version__}".encode())
    for path in sorted(root.rglob("*.py")):
        stat = path.stat()
        digest.update(f"\0{path.relative_to(root)}\0{stat.st_mtime_ns}\0{stat.st_size}".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class RunRequest:
    argv: list[str]
    env: dict[str, str]
    cwd: str
    umask: int
    fingerprint: str

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol": PROTOCOL,
            "argv": self.argv,
            "env": self.env,
            "cwd": self.cwd,
            "umask": self.umask,
            "fingerprint": self.fingerprint,
        }


def parse_request(body: Any) -> RunRequest:
    """Strict: every field present, of its type, and nothing else."""
    if not isinstance(body, dict):
        raise NodeHostError("request: expected a JSON object", code="HOST_BAD_REQUEST")
    expected = {"protocol", "argv", "env", "cwd", "umask", "fingerprint"}
    if set(body) != expected:
        raise NodeHostError(
            f"request: expected fields {sorted(expected)}, got {sorted(body)}",
            code="HOST_BAD_REQUEST",
        )
    if body["protocol"] != PROTOCOL:
        raise NodeHostError(
            f"request: protocol {body['protocol']!r}, this host speaks {PROTOCOL}",
            code="HOST_STALE",
        )
    argv, env = body["argv"], body["env"]
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise NodeHostError(
            "request: argv must be a non-empty list of strings", code="HOST_BAD_REQUEST"
        )
    if argv[0] != "run":
        raise NodeHostError(
            f"request: the host runs only `run`, not {argv[0]!r}", code="HOST_BAD_REQUEST"
        )
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise NodeHostError("request: env must map strings to strings", code="HOST_BAD_REQUEST")
    cwd, umask, fingerprint = body["cwd"], body["umask"], body["fingerprint"]
    if not isinstance(cwd, str) or not os.path.isabs(cwd):
        raise NodeHostError("request: cwd must be an absolute path", code="HOST_BAD_REQUEST")
    if type(umask) is not int or not 0 <= umask <= 0o777:
        raise NodeHostError("request: umask must be an integer 0..0o777", code="HOST_BAD_REQUEST")
    if not isinstance(fingerprint, str):
        raise NodeHostError("request: fingerprint must be a string", code="HOST_BAD_REQUEST")
    return RunRequest(list(argv), dict(env), cwd, umask, fingerprint)


def send_request(sock: socket.socket, request: RunRequest, fds: Sequence[int] = STDIO_FDS) -> None:
    """``fds`` become the node's stdin, stdout and stderr."""
    body = json.dumps(request.to_json()).encode()
    if len(body) > MAX_MESSAGE:
        raise NodeHostError(
            f"request of {len(body)} bytes is over {MAX_MESSAGE}", code="HOST_BAD_REQUEST"
        )
    socket.send_fds(sock, [_LENGTH.pack(len(body))], list(fds))
    sock.sendall(body)


def recv_request(sock: socket.socket) -> tuple[RunRequest, list[int]]:
    """The request and the caller's stdio descriptors (closed here if the request is bad)."""
    head, fds, _, _ = socket.recv_fds(sock, _LENGTH.size, len(STDIO_FDS))
    if not head and not fds:  # e.g. a second host checking whether this one listens
        raise NodeHostError("connection closed without a request", code="HOST_NO_REQUEST")
    try:
        if len(fds) != len(STDIO_FDS):
            raise NodeHostError(
                f"request: expected {len(STDIO_FDS)} file descriptors, got {len(fds)}",
                code="HOST_BAD_REQUEST",
            )
        if len(head) < _LENGTH.size:
            head += _recv_exact(sock, _LENGTH.size - len(head))
        return parse_request(_decode(_recv_exact(sock, _check_length(head)))), fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def send_message(sock: socket.socket, message: dict[str, Any]) -> None:
    body = json.dumps(message).encode()
    sock.sendall(_LENGTH.pack(len(body)) + body)


def recv_message(sock: socket.socket) -> dict[str, Any] | None:
    """The next answer, or None when the other end closed the connection."""
    head = _recv_exact(sock, _LENGTH.size, eof_ok=True)
    if head is None:
        return None
    message = _decode(_recv_exact(sock, _check_length(head)))
    if not isinstance(message, dict) or len(message) != 1:
        raise NodeHostError(f"host answered {message!r}", code="HOST_BAD_ANSWER")
    return message


def _check_length(head: bytes) -> int:
    (length,) = _LENGTH.unpack(head)
    if length > MAX_MESSAGE:
        raise NodeHostError(
            f"message of {length} bytes is over {MAX_MESSAGE}", code="HOST_BAD_REQUEST"
        )
    return length


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NodeHostError(f"message is not JSON: {exc}", code="HOST_BAD_REQUEST") from None


def _recv_exact(sock: socket.socket, count: int, *, eof_ok: bool = False) -> Any:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            if eof_ok and not data:
                return None
            raise NodeHostError("connection closed mid-message", code="HOST_BAD_REQUEST")
        data += chunk
    return data
