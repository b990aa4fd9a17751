"""Start a real ``sharedllm serve`` process on this machine (tests, the demo) and stop it.

    with start_gateway(net.devnet.rpc_url, net.devnet.deployment_path,
                       operator_dev_account=9, keys_file=None, home=tmp) as gw:
        openai.OpenAI(base_url=f"{gw.url}/v1", api_key=...)

We wait for its "ready <url>" line, which it prints once the model is loaded and the port
is listening, so the first request never races the start-up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from sharedllm import paths
from sharedllm.errors import PeerError

READY_TIMEOUT_S = 120.0


@dataclass
class LocalGateway:
    process: subprocess.Popen
    url: str  # http://127.0.0.1:PORT; the OpenAI API base is url + "/v1"
    log: list[str] = field(default_factory=list)

    @property
    def api_base(self) -> str:
        return f"{self.url}/v1"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def __enter__(self) -> LocalGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _command() -> list[str]:
    exe = Path(sys.executable).with_name("sharedllm")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "from sharedllm.cli import sharedllm; sharedllm()"]


def start_gateway(
    rpc_url: str,
    deployment: Path,
    *,
    operator_dev_account: int | None,
    keys_file: Path | None,
    home: Path,
    port: int | None = None,
    env: dict | None = None,
    models_dir: Path | None = None,
) -> LocalGateway:
    """Spawn ``sharedllm serve`` with ``$SHAREDLLM_HOME=home`` and wait until it answers.

    The model is read from ``models_dir``, by default the caller's own store, so a test's
    private home does not need its own copy of the model.
    """
    args = [
        *_command(), "serve", "--host", "127.0.0.1", "--port", str(port or 0),
        "--rpc-url", rpc_url, "--deployment", str(deployment),
        "--models-dir", str(models_dir or paths.models_dir()),
    ]  # fmt: skip
    if operator_dev_account is not None:
        args += ["--dev-account", str(operator_dev_account)]
    if keys_file is not None:
        args += ["--keys", str(keys_file)]
    home.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "SHAREDLLM_HOME": str(home), **(env or {})},
        start_new_session=True,
    )
    lines: list[str] = []
    ready: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())
            if line.startswith("ready ") and not ready:
                ready.append(line)
                done.set()
        done.set()

    threading.Thread(target=read, daemon=True).start()
    done.wait(READY_TIMEOUT_S)
    if not ready:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        tail = "\n".join(lines[-30:])
        raise PeerError(f"the gateway did not become ready:\n{tail}")
    return LocalGateway(proc, ready[0].split()[1], lines)
