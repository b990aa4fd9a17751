"""A local chain for development, tests, the demo and benchmarks: anvil plus our contracts.

``Devnet`` is a context manager: it starts anvil on a free port, deploys, funds the dev
accounts with SHARE, fills the reward pool and writes the deployment file; leaving the
block stops anvil. anvil is started with a parent-death signal, so it cannot outlive
the Python process even if that process is killed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from web3.types import RPCEndpoint

from sharedllm.chain.accounts import DEV_ACCOUNT_COUNT, DEV_MNEMONIC, dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.connection import Chain, connect, web3_for
from sharedllm.chain.deploy import deploy
from sharedllm.chain.deployment import Deployment, MarketParams
from sharedllm.errors import ChainError, ConfigError

ANVIL_ENV = "SHAREDLLM_ANVIL"
REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 20

# Seconds, so that tests and the demo run fast: a job can be disputed and proven over-charged
# until at most 2 * 10 + 2 * (25 + 10) = 90 s after its commitment, and a node that asked to
# leave is paid for jobs submitted up to max_job_ttl (600 s) after it asked: both inside the
# 720 s it stays slashable.
DEVNET_PARAMS = MarketParams(
    challenge_window=10,
    withdrawal_delay=900,
    max_job_ttl=600,
    slash_amount=50 * WEI_PER_SHARE,
    bounty_bps=2000,
    reward_per_token=10**12,
    min_verifier_stake=100 * WEI_PER_SHARE,
    verifier_unbonding_delay=60,
    min_bond=20 * WEI_PER_SHARE,
    jury_size=3,
    response_window=15,
    commit_window=25,
    reveal_window=10,
    juror_penalty=10 * WEI_PER_SHARE,
    juror_share_bps=5000,
    demand_bond=5 * WEI_PER_SHARE,
    batch_response_window=15,
    min_stake=100 * WEI_PER_SHARE,
    unbonding_delay=720,
)
# anvil mines only on transactions by default. Verifiers draw their randomness from the block
# after a job's commitment, and a quiet chain's clock must move for challenge windows to end,
# so the devnet also mines a block every second (automine stays on for transactions).
DEFAULT_BLOCK_TIME_S = 1
DEV_FUNDING = 10_000 * WEI_PER_SHARE
REWARD_POOL_FUNDING = 10_000 * WEI_PER_SHARE


def find_anvil() -> Path:
    """``$SHAREDLLM_ANVIL``, else the real binary inside node_modules, else ``anvil`` on PATH.

    The binary is preferred over ``node_modules/.bin/anvil``, a Node wrapper whose child
    would survive a signal sent to the wrapper.
    """
    if os.environ.get(ANVIL_ENV):
        path = Path(os.environ[ANVIL_ENV])
        if not os.access(path, os.X_OK):
            raise ConfigError(f"${ANVIL_ENV}={path} is not an executable", field="anvil")
        return path
    for root in (REPO_ROOT, Path.cwd()):
        for path in sorted((root / "node_modules" / "@foundry-rs").glob("anvil-*/bin/anvil")):
            if os.access(path, os.X_OK):
                return path
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise ConfigError(
        f"anvil not found: run `npm ci` in the repository or set ${ANVIL_ENV}", field="anvil"
    )


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class Devnet:
    """anvil + deployed contracts, as a context manager."""

    def __init__(
        self,
        port: int | None = None,
        params: MarketParams = DEVNET_PARAMS,
        deployment_path: Path | None = None,
        fund: bool = True,
        anvil_args: tuple[str, ...] = (),
        block_time: int | None = DEFAULT_BLOCK_TIME_S,
    ) -> None:
        """``block_time`` None keeps anvil's mine-on-transaction behaviour only."""
        self.port = port or free_port()
        self.rpc_url = f"http://127.0.0.1:{self.port}"
        self.params = params
        self.deployment_path = deployment_path
        self.fund = fund
        self.anvil_args = anvil_args
        self.block_time = block_time
        self.deployment: Deployment | None = None
        self._process: subprocess.Popen[bytes] | None = None
        # Lives as long as the devnet: anvil writes to it until stop().
        self._log = tempfile.TemporaryFile()  # noqa: SIM115

    def __enter__(self) -> Devnet:
        try:
            self.start_anvil()
            self.deploy_contracts()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start_anvil(self) -> None:
        # Without this check a second devnet on a busy port would find the first one
        # answering there and deploy onto it.
        if not port_is_free(self.port):
            raise ChainError(
                f"port {self.port} is in use (another devnet running?); pick --port",
                field="port",
            )
        command = [
            str(find_anvil()),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--mnemonic", DEV_MNEMONIC,
            "--accounts", str(DEV_ACCOUNT_COUNT),
            "--chain-id", "31337",
            *self._mining_args(),
            *self.anvil_args,
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal's Ctrl-C reaches us; we stop anvil in order
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self._process.poll() is not None:
                raise ChainError(f"anvil exited at start: {self._log_tail()}")
            try:
                web3_for(self.rpc_url)
                if self._process.poll() is None:
                    return
            except ChainError:
                if time.monotonic() > deadline:
                    raise ChainError(f"anvil did not answer within {START_TIMEOUT_S} s") from None
                time.sleep(0.1)

    def _mining_args(self) -> list[str]:
        if self.block_time is None:
            return []
        return ["--block-time", str(self.block_time), "--mixed-mining"]

    def deploy_contracts(self) -> Deployment:
        w3 = web3_for(self.rpc_url)
        deployer = dev_account(0)
        self.deployment = deploy(
            w3, deployer, self.params, rpc_url=self.rpc_url, save_to=self.deployment_path
        )
        if self.fund:
            chain = self.chain()
            for index in range(1, DEV_ACCOUNT_COUNT):
                chain.token.transfer(deployer, dev_account(index).address, DEV_FUNDING)
            chain.market.fund_rewards(deployer, REWARD_POOL_FUNDING, chain.token)
        return self.deployment

    def chain(self) -> Chain:
        if self.deployment is None:
            raise ChainError("the devnet has no deployment yet")
        return connect(self.rpc_url, self.deployment)

    def advance_time(self, seconds: int) -> None:
        """Move the chain's clock forward and mine a block (for windows and delays)."""
        w3 = web3_for(self.rpc_url)
        w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [seconds])
        w3.provider.make_request(RPCEndpoint("evm_mine"), [])

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _log_tail(self) -> str:
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else "(no output)"
