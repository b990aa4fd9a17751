"""``sharedllm-node host``: keep the node's libraries imported and start nodes by forking.

Nearly all of a node's start-up is importing torch and transformers. The host pays that
once: it imports every module a node uses, builds each stored model's layer skeleton on the
meta device (which imports that architecture's modules), then waits on a Unix socket.
``sharedllm-node run`` hands it its command line, environment, working directory, umask and
its own stdin, stdout and stderr; the host forks, and the child, which already holds every
module, becomes that node: it loads its span's shards and serves.

A node started this way belongs to its run command, not to the host. Its output goes to the
run command's terminal or pipe; signals the run command gets are passed on to it; its exit
status goes back over the connection; and it kills itself the moment that connection drops
(the run command was killed), as a node in the run command's own process would have died.
Stopping the host leaves running nodes alone. Until they write to them, forked nodes share
the libraries' memory pages with the host and with each other.

The host never computes: no tensor operation runs before a fork, so a child never inherits a
half-started thread pool, and the host refuses to fork while any Python thread runs.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from pathlib import Path

from sharedllm.cli_base import ready_line
from sharedllm.errors import ModelError, NodeHostError
from sharedllm.node.host_wire import (
    STDIO_FDS,
    RunRequest,
    code_fingerprint,
    recv_request,
    send_message,
)

log = logging.getLogger("sharedllm.node.host")

REQUEST_TIMEOUT_S = 10.0
# Everything `sharedllm-node run` imports on any path: free and paid nodes, --layers auto.
PRELOAD = (
    "sharedllm.cli",
    "sharedllm.node.cli",
    "sharedllm.node.app",
    "sharedllm.node.paid_setup",
    "sharedllm.placement.span_choice",
    "sharedllm.peers.probe",
    "sharedllm.node.registry_cli",
    "transformers.masking_utils",
)


class _Stop(Exception):
    pass


def run_host(socket_file: Path, models_dir: Path | None, *, as_json: bool = False) -> int:
    began = time.perf_counter()
    _claim(socket_file)  # before the long import: a second host fails at once
    fingerprint = code_fingerprint()
    models = preload(models_dir)
    listener = _listen(socket_file)
    inode = os.stat(socket_file).st_ino

    def stop(signum: int, frame: object) -> None:
        raise _Stop

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # Nodes report their exit status to their run commands; the kernel reaps them here.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    fields = {"models": len(models), "preload_s": f"{time.perf_counter() - began:.2f}"}
    print(ready_line(str(socket_file), fields, as_json=as_json), flush=True)
    try:
        while True:
            conn, _ = listener.accept()
            with conn:
                _start_node(conn, listener, fingerprint)
    except _Stop:
        pass
    finally:
        listener.close()
        try:
            if os.stat(socket_file).st_ino == inode:  # not a newer host's socket
                socket_file.unlink()
        except FileNotFoundError:
            pass
    print("stopped", file=sys.stderr, flush=True)
    return 0


def preload(models_dir: Path | None) -> list[str]:
    """Import what a node needs; returns the ids of the models whose modules are loaded."""
    for name in PRELOAD:
        importlib.import_module(name)
    from sharedllm.model.architecture import config_from_dict, skeleton
    from sharedllm.model.manifest import FLOAT32
    from sharedllm.model.precision import load_precision_library
    from sharedllm.model.store import ModelStore

    store = ModelStore(models_dir)
    loaded = []
    for model_id in store.model_ids():
        try:
            manifest = store.manifest(model_id)
            skeleton(config_from_dict(manifest.config))
            if manifest.dtype != FLOAT32:
                load_precision_library()
        except ModelError as exc:
            print(f"skipping model {model_id}: {exc}", file=sys.stderr, flush=True)
            continue
        loaded.append(model_id)
    return loaded


def _claim(socket_file: Path) -> None:
    """Refuse if a host listens on ``socket_file``; remove the file if one left it behind."""
    socket_file.parent.mkdir(parents=True, exist_ok=True)
    if socket_file.exists():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(socket_file))
        except (ConnectionRefusedError, FileNotFoundError):
            socket_file.unlink(missing_ok=True)  # left by a host that died
        else:
            raise NodeHostError(
                f"a node host already listens on {socket_file}", code="HOST_RUNNING"
            )
        finally:
            probe.close()


def _listen(socket_file: Path) -> socket.socket:
    _claim(socket_file)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # the socket file is the owner's alone
    try:
        listener.bind(str(socket_file))
    finally:
        os.umask(old)
    listener.listen(64)
    return listener


def _start_node(conn: socket.socket, listener: socket.socket, fingerprint: str) -> None:
    conn.settimeout(REQUEST_TIMEOUT_S)
    fds: list[int] = []
    try:
        _check_peer(conn)
        request, fds = recv_request(conn)
        if request.fingerprint != fingerprint:
            raise NodeHostError(
                "this host imported other code than the run command runs "
                "(sharedllm was changed or reinstalled): restart `sharedllm-node host`",
                code="HOST_STALE",
            )
        if threading.active_count() != 1:
            raise NodeHostError("the host runs threads and cannot fork safely", code="HOST_THREADS")
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
    except (NodeHostError, OSError) as exc:
        for fd in fds:
            os.close(fd)
        if isinstance(exc, NodeHostError) and exc.code == "HOST_NO_REQUEST":
            return
        error = exc if isinstance(exc, NodeHostError) else NodeHostError(f"request failed: {exc}")
        print(f"refused a run: {error}", file=sys.stderr, flush=True)
        with contextlib.suppress(OSError):
            send_message(conn, {"error": error.to_json()})
        return
    if pid == 0:
        _become_node(conn, listener, request, fds)  # never returns
    for fd in fds:
        os.close(fd)
    print(f"started node {pid}: sharedllm-node {' '.join(request.argv)}", flush=True)


def _check_peer(conn: socket.socket) -> None:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    if uid != os.getuid():
        raise NodeHostError(
            f"user {uid} may not start nodes of user {os.getuid()}", code="HOST_FORBIDDEN"
        )


def _become_node(
    conn: socket.socket, listener: socket.socket, request: RunRequest, fds: list[int]
) -> None:
    code = 1
    try:
        listener.close()
        os.setsid()  # off the host's terminal: the run command passes signals on
        for target, fd in zip(STDIO_FDS, fds, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        _reopen_stdio()
        os.chdir(request.cwd)
        os.umask(request.umask)
        os.environ.clear()
        os.environ.update(request.env)
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        conn.settimeout(None)
        send_message(conn, {"pid": os.getpid()})
        threading.Thread(target=_die_with_caller, args=(conn,), daemon=True).start()
        from sharedllm.node.cli import main

        code = main(request.argv)
    except SystemExit as exc:  # a completion request exits from inside click
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        logging.shutdown()
        with contextlib.suppress(OSError):
            send_message(conn, {"exit": code})
        os._exit(code)


def _reopen_stdio() -> None:
    """Streams as a fresh interpreter would open them on the run command's descriptors."""
    sys.stdin = os.fdopen(0, "r", closefd=False)
    sys.stdout = os.fdopen(1, "w", buffering=1 if os.isatty(1) else -1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False, errors="backslashreplace")


def _die_with_caller(conn: socket.socket) -> None:
    """The run command says nothing after its request: when recv returns, it is gone."""
    with contextlib.suppress(OSError):
        conn.recv(1)
    os.kill(os.getpid(), signal.SIGKILL)
