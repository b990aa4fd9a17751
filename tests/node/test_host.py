"""``sharedllm-node host``: nodes started as forks of it behave as nodes in their own process.

The session's node host (tests/conftest.py) serves these tests; ``$SHAREDLLM_NODE_HOST``
points every ``sharedllm-node run`` at it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest
from links import call_json, pinned_ssl

from sharedllm.errors import NodeHostError
from sharedllm.node import host_client
from sharedllm.node.host_wire import (
    SOCKET_ENV,
    RunRequest,
    code_fingerprint,
    parse_request,
    recv_message,
    recv_request,
    send_message,
    send_request,
)
from sharedllm.node.local import start_node
from sharedllm.processes import program

pytestmark = [pytest.mark.model, pytest.mark.nodes]


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return True
        time.sleep(0.05)
    return False


def _ready_line(node: subprocess.Popen, limit: int = 200) -> str:
    """The node's ready line, read from its stdout wherever it comes: a library may print a
    line of its own first, and the line is found all the same."""
    assert node.stdout is not None
    for _ in range(limit):
        line = node.stdout.readline()
        if not line or line.startswith("ready "):
            return line
    return ""


def _run_node(*argv: str, cwd: Path | None = None, env: dict[str, str] | None = None):
    return subprocess.run(
        [*program("sharedllm-node"), "run", "--port", "0", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def _ask(request: dict | bytes, fds: bool = True) -> dict | None:
    """Send one raw request to the session's host and return its first answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(os.environ[SOCKET_ENV])
        body = request if isinstance(request, bytes) else json.dumps(request).encode()
        head = struct.pack(">I", len(body))
        if fds:
            socket.send_fds(sock, [head], [0, 1, 2])
        else:
            sock.sendall(head)
        with contextlib.suppress(BrokenPipeError):  # it may refuse before reading the body
            sock.sendall(body)
        return recv_message(sock)


def _request(**change) -> dict:
    body = RunRequest(
        ["run", "--layers", "0:1"], dict(os.environ), "/", 0o022, code_fingerprint()
    ).to_json()
    return {**body, **change}


def test_a_run_becomes_a_fork_of_the_host_and_serves(node_host, model_home):
    node = start_node("0:3")
    try:
        assert node.pid != node.process.pid
        assert _parent(node.pid) == node_host.process.pid
        info = call_json(f"{node.url}/info", pinned_ssl(node))[1]
        assert info["span"] == [0, 3]
    finally:
        node.stop()
    assert node.process.returncode == 0
    assert "stopped" in node.log  # SIGTERM reached the node, which shut down cleanly
    assert _gone(node.pid)


def test_killing_the_run_command_kills_its_node(model_home):
    node = start_node("0:3")
    try:
        node.process.send_signal(signal.SIGKILL)  # only the run command, as a crash would
        assert _gone(node.pid), "the node outlived its run command"
    finally:
        node.kill()


def test_the_node_error_and_exit_status_come_back_to_the_run_command(node_host, model_home):
    result = _run_node("--layers", "0:99")
    assert result.returncode == 1
    assert "0:99" in result.stderr and "Traceback" not in result.stderr
    assert any("--layers 0:99" in line for line in node_host.lines if "started node" in line)


def test_a_run_uses_its_own_working_directory_and_environment(tmp_path, model_home):
    (tmp_path / "models").symlink_to(model_home / "models")
    empty = tmp_path / "empty-home"
    empty.mkdir()
    # A relative --models-dir is read from the run command's directory, not the host's.
    node = subprocess.Popen(
        [*program("sharedllm-node"), "run", "--layers", "0:2", "--port", "0",
         "--models-dir", "models"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=(tmp_path / "stderr").open("w"), text=True,
    )  # fmt: skip
    try:
        line = _ready_line(node)
        assert line.startswith("ready "), (tmp_path / "stderr").read_text()
    finally:
        node.terminate()
        node.wait(20)
    # And SHAREDLLM_HOME is the run command's: an empty one holds no model.
    result = _run_node("--layers", "0:2", env={"SHAREDLLM_HOME": str(empty)})
    assert result.returncode == 1
    assert "model" in result.stderr.lower()


@pytest.mark.parametrize(
    ("request_", "fds", "code"),
    [
        (_request(), False, "HOST_BAD_REQUEST"),  # no stdio descriptors
        (b"{not json", True, "HOST_BAD_REQUEST"),
        (_request(fingerprint="0" * 64), True, "HOST_STALE"),
        (_request(argv=["stake", "--dev-account", "1"]), True, "HOST_BAD_REQUEST"),
        (_request(cwd="relative/dir"), True, "HOST_BAD_REQUEST"),
        (_request(extra=1), True, "HOST_BAD_REQUEST"),
    ],
    ids=["no-fds", "not-json", "other-code", "not-run", "relative-cwd", "extra-field"],
)
def test_the_host_refuses_bad_requests_and_keeps_serving(model_home, request_, fds, code):
    answer = _ask(request_, fds=fds)
    assert answer is not None and answer["error"]["code"] == code, answer
    node = start_node("0:1")  # the host still starts nodes
    node.stop()
    assert node.process.returncode == 0


def test_a_run_command_without_stdin_still_starts_through_the_host(model_home, tmp_path):
    command = [*program("sharedllm-node"), "run", "--layers", "0:1", "--port", "0"]
    node = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=(tmp_path / "stderr").open("w"), text=True,
        preexec_fn=lambda: os.close(0),  # a closed descriptor 0, as a daemon has
    )  # fmt: skip
    try:
        line = _ready_line(node)
        assert line.startswith("ready "), (tmp_path / "stderr").read_text()
        assert f"pid={node.pid} " not in line + " "  # a fork of the host, not this process
    finally:
        node.terminate()
        node.wait(20)
    assert node.returncode == 0


def test_a_second_host_on_the_same_socket_is_refused_at_once(node_host):
    refusals = sum("refused a run" in line for line in node_host.lines)
    result = subprocess.run(
        [*program("sharedllm-node"), "host", "--socket", os.environ[SOCKET_ENV]],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "HOST_RUNNING" in result.stderr
    assert node_host.process.poll() is None
    # Its check (a connection, and nothing sent) is not taken for a bad request.
    assert sum("refused a run" in line for line in node_host.lines) == refusals


def test_without_a_listening_host_the_node_starts_in_its_own_process(tmp_path, model_home):
    dead = tmp_path / "dead.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(dead))  # the file of a host that died: nobody listens
    node = start_node("0:2", env={SOCKET_ENV: str(dead)})
    try:
        assert node.pid == node.process.pid
        assert any("no node host answers" in line for line in node.log)
    finally:
        node.stop()


def test_a_host_running_other_code_is_passed_over(tmp_path):
    path = tmp_path / "stale.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)

    def stale_host() -> None:
        conn, _ = listener.accept()
        with conn:
            _, fds = recv_request(conn)
            for fd in fds:
                os.close(fd)
            send_message(conn, {"error": {"code": "HOST_STALE", "message": "other code"}})

    thread = threading.Thread(target=stale_host)
    thread.start()
    try:
        assert host_client.run_in_host(path, ["run"], needs_password=False) is None
    finally:
        thread.join(10)
        listener.close()


def test_requests_are_parsed_strictly():
    good = _request()
    assert parse_request(good).argv == ["run", "--layers", "0:1"]
    for bad in (
        [],
        {**good, "protocol": 2},
        {**good, "argv": []},
        {**good, "argv": ["run", 3]},
        {**good, "env": {"A": 1}},
        {**good, "umask": 0o1000},
        {**good, "umask": True},
    ):
        with pytest.raises(NodeHostError, match="request"):
            parse_request(bad)


def test_send_request_carries_the_stdio_descriptors():
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with left, right:
        send_request(left, RunRequest(["run"], {}, "/", 0o022, "f"))
        head, fds, _, _ = socket.recv_fds(right, 4, 3)
        assert len(fds) == 3
        for fd in fds:
            os.close(fd)
