"""Start a real ``sharedllm serve`` process on this machine (tests, the demo) and stop it.

    with start_gateway(net.devnet.rpc_url, net.devnet.deployment_path,
                       operator_dev_account=9, keys_file=None, home=tmp) as gw:
        openai.OpenAI(base_url=f"{gw.url}/v1", api_key=...)

We wait for its "ready <url>" line, which it prints once the model is loaded and the port
is listening, so the first request never races the start-up.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from sharedllm import paths
from sharedllm.processes import Child, program


@dataclass
class LocalGateway:
    child: Child
    url: str  # http://127.0.0.1:PORT; the OpenAI API base is url + "/v1"

    @property
    def api_base(self) -> str:
        return f"{self.url}/v1"

    @property
    def process(self) -> subprocess.Popen:
        return self.child.process

    @property
    def log(self) -> list[str]:
        return self.child.lines

    def stop(self) -> None:
        self.child.stop(15)

    def __enter__(self) -> LocalGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


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
        *program("sharedllm"), "serve", "--host", "127.0.0.1", "--port", str(port or 0),
        "--rpc-url", rpc_url, "--deployment", str(deployment),
        "--models-dir", str(models_dir or paths.models_dir()),
    ]  # fmt: skip
    if operator_dev_account is not None:
        args += ["--dev-account", str(operator_dev_account)]
    if keys_file is not None:
        args += ["--keys", str(keys_file)]
    home.mkdir(parents=True, exist_ok=True)
    child = Child(args, {"SHAREDLLM_HOME": str(home), **(env or {})})
    child.wait_ready("the gateway")
    return LocalGateway(child, child.url)
