"""A whole paid network on this machine: a devnet, staked node processes, a paying client.

The demo, the paid-path tests and the benchmarks all need the same thing, so it lives here:

    with LocalNetwork(spans=[(0, 10), (10, 20), (20, 30)]) as net:
        text, paid = net.generate("What is the capital of France?", client=dev_account(4))

Node processes keep their state (keys, ledgers) in a private folder per network, so a new
devnet never meets a ledger written against an old one; the model shards are shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from eth_account.signers.local import LocalAccount

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.connection import Chain
from sharedllm.chain.deployment import MarketParams
from sharedllm.chain.devnet import DEVNET_PARAMS, Devnet, free_port
from sharedllm.chain.market import JobRecord
from sharedllm.chain.node_keys import load_or_create_node_key, public_key_bytes32
from sharedllm.chain.registry import NodeConfig
from sharedllm.client.generate import TextGenerator
from sharedllm.client.job_book import JobBook
from sharedllm.client.payer import PaidJob, Payer
from sharedllm.client.planner import RoutePolicy
from sharedllm.client.registry_directory import RegistryDirectory
from sharedllm.errors import PeerError
from sharedllm.model.store import ModelStore
from sharedllm.node.local import LocalNode, StartingNode
from sharedllm.processes import Child, program

NODE_STAKE = 150 * WEI_PER_SHARE
NODE_PRICE = 10**12  # SHARE wei per position per layer (prompt and answer tokens alike)
VERIFIER_ACCOUNT = 9
VERIFIER_READY_TIMEOUT_S = 120.0


class LocalNetwork:
    def __init__(
        self,
        spans: Sequence[tuple[int, int]] = ((0, 10), (10, 20), (20, 30)),
        *,
        prices: Sequence[int] | None = None,
        node_accounts: Sequence[int] = (1, 2, 3),
        node_args: Sequence[str] = ("--threads", "1"),
        node_env: dict[str, str] | None = None,
        node_faults: dict[int, Sequence[str]] | None = None,
        params: MarketParams = DEVNET_PARAMS,
        verifier_probability: float | None = None,
        jurors: Sequence[int] = (),
        node_stake: int = NODE_STAKE,
    ) -> None:
        """``node_faults`` gives single nodes, by index, the flags of
        ``sharedllm.testing.faulty_node`` (a test's cheater: ``("--cheat", "skip_layer")``);
        ``verifier_probability`` starts a ``sharedllm-verifier run`` process with that check
        probability once the nodes are up (see ``start_verifier``); ``jurors`` are the dev
        accounts of more verifier processes that check nothing themselves (probability 0)
        and sit on the juries they are drawn for. Every node serves TLS pinned to its
        registered key, at an https endpoint."""
        self.spans = list(spans)
        self.node_stake = node_stake
        self.prices = list(prices or [NODE_PRICE] * len(self.spans))
        self.account_indexes = list(node_accounts[: len(self.spans)])
        self.accounts = [dev_account(i) for i in self.account_indexes]
        self.node_args = list(node_args)
        self.node_env = dict(node_env or {})
        self.node_faults = dict(node_faults or {})
        self.store = ModelStore()
        self.manifest = self.store.manifest()
        self._tmp = tempfile.TemporaryDirectory(prefix="sharedllm-net-")
        self.home = Path(self._tmp.name)
        self.devnet = Devnet(deployment_path=self.home / "deployment.json", params=params)
        self.verifier_probability = verifier_probability
        self.juror_accounts = list(jurors)
        self.verifiers: dict[int, LocalVerifier] = {}
        self.chain: Chain | None = None
        self.ports: list[int] = []
        self.keys: list[Path] = []
        self.nodes: list[LocalNode | None] = []

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> LocalNetwork:
        try:
            self.devnet.__enter__()
            self.chain = self.devnet.chain()
            self.stake_all()
            if self.verifier_probability is not None:
                # Started alongside the nodes: the spans it preloads are staked already.
                self.start_verifier(self.verifier_probability, wait=False)
            for account in self.juror_accounts:
                self.start_verifier(0.0, account=account, wait=False)
            self.start_all()
            for verifier in self.verifiers.values():
                verifier.wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for verifier in self.verifiers.values():
            verifier.stop()
        for node in self.nodes:
            if node is not None:
                node.stop()
        with contextlib.suppress(Exception):
            self.devnet.__exit__(None, None, None)
        self._tmp.cleanup()

    # -- nodes -----------------------------------------------------------------------------

    def stake_all(self) -> None:
        assert self.chain is not None
        for i, (account, (start, end), price) in enumerate(
            zip(self.accounts, self.spans, self.prices, strict=True)
        ):
            port = free_port()
            key_path = self.home / f"node{i}.ed25519"
            key = load_or_create_node_key(key_path)
            cfg = NodeConfig(
                f"https://127.0.0.1:{port}",
                public_key_bytes32(key),
                self.manifest.model_id,
                start,
                end,
                price,
            )
            self.chain.registry.stake(account, self.node_stake, cfg, self.chain.token)
            self.ports.append(port)
            self.keys.append(key_path)
        self.nodes = [None] * len(self.spans)

    def _spawn(self, i: int, extra: Sequence[str] = (), faults: Sequence[str] = ()) -> StartingNode:
        start, end = self.spans[i]
        args = [
            "--port", str(self.ports[i]),
            "--models-dir", str(self.store.root),
            "--deployment", str(self.devnet.deployment_path),
            "--rpc-url", self.devnet.rpc_url,
            "--dev-account", str(self.account_indexes[i]),
            "--node-key", str(self.keys[i]),
            # Each job settles on its own unless node_args ask for batches, so that a test
            # can follow one answer's record on the market.
            "--batch-size", "0",
            *self.node_args,
            *extra,
        ]  # fmt: skip
        node_env = {"SHAREDLLM_HOME": str(self.home / f"node{i}"), **self.node_env}
        return StartingNode(f"{start}:{end}", args, node_env, faults)

    def start_all(self) -> None:
        starting = [
            self._spawn(i, faults=self.node_faults.get(i, ())) for i in range(len(self.spans))
        ]
        for i, s in enumerate(starting):
            self.nodes[i] = s.wait()

    def restart(self, i: int, extra: Sequence[str] = (), faults: Sequence[str] = ()) -> LocalNode:
        """Start node ``i`` again (after a crash): same account, key, port and ledger;
        ``faults`` as in ``node_faults``."""
        node = self._spawn(i, extra=extra, faults=faults).wait()
        self.nodes[i] = node
        return node

    def wait_for_job(self, job_id: str, *statuses: str, timeout: float = 90.0) -> JobRecord:
        """The job's on-chain record once its status is one of ``statuses`` (nodes submit and
        finalize on their own clocks); ``AssertionError`` naming the status after ``timeout``."""
        assert self.chain is not None
        deadline = time.monotonic() + timeout
        while (record := self.chain.market.get_job(job_id)).status not in statuses:
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} is {record.status}, wanted {statuses}")
            time.sleep(0.3)
        return record

    def ledger_path(self, i: int) -> Path:
        return self.home / f"node{i}" / "nodes" / self.accounts[i].address / "ledger.db"

    # -- verifiers -------------------------------------------------------------------------

    @property
    def verifier(self) -> LocalVerifier | None:
        """The verifier that checks jobs (account ``VERIFIER_ACCOUNT``), if started."""
        return self.verifiers.get(VERIFIER_ACCOUNT)

    @property
    def jurors(self) -> list[LocalVerifier]:
        return [self.verifiers[a] for a in self.juror_accounts if a in self.verifiers]

    def start_verifier(
        self,
        probability: float = 1.0,
        account: int = VERIFIER_ACCOUNT,
        extra: Sequence[str] = ("--threads", "1"),
        wait: bool = True,
        crash_at: str | None = None,
    ) -> LocalVerifier:
        """Start (or, after a crash, restart) the verifier process of ``account``; it stakes
        the court's minimum on its first start and keeps its ledger in this network's folder.
        ``crash_at`` names a fault point where it exits (``sharedllm.testing.faulty_verifier``)."""
        if account in self.verifiers:
            self.verifiers[account].stop()
        args = [
            "run",
            "--probability", str(probability),
            "--models-dir", str(self.store.root),
            "--deployment", str(self.devnet.deployment_path),
            "--rpc-url", self.devnet.rpc_url,
            "--dev-account", str(account),
            "--poll-interval", "0.5",
            *extra,
        ]  # fmt: skip
        home = {"SHAREDLLM_HOME": str(self.home / "verifier")}
        verifier = LocalVerifier(args, home, dev_account(account).address, crash_at)
        self.verifiers[account] = verifier
        if wait:
            verifier.wait_ready()
        return verifier

    def verifier_ledger_path(self, account: int = VERIFIER_ACCOUNT) -> Path:
        address = dev_account(account).address
        return self.home / "verifier" / "verifiers" / address / "ledger.db"

    # -- clients ---------------------------------------------------------------------------

    def payer(self, client: LocalAccount) -> Payer:
        assert self.chain is not None
        book = JobBook(self.home / "client" / f"{client.address}.db")
        return Payer(self.chain, client, RegistryDirectory(self.chain), book)

    def generate(
        self,
        prompt: str,
        client: LocalAccount,
        max_tokens: int = 32,
        policy: RoutePolicy | None = None,
        **options: object,
    ) -> tuple[str, list[PaidJob]]:
        """Answer ``prompt`` as a paid job from ``client``'s escrow; (text, jobs paid).
        ``policy`` (e.g. a trust list of node URLs) steers the route."""
        payer = self.payer(client)

        async def run() -> str:
            async with TextGenerator(
                payer.directory, payer=payer, store=self.store, policy=policy
            ) as gen:
                pieces = [p async for p in gen.generate(prompt, max_tokens=max_tokens, **options)]
            return "".join(pieces)

        text = asyncio.run(run())
        return text, payer.jobs


class LocalVerifier:
    """A ``sharedllm-verifier run`` process; its output is kept and its verdict lines read."""

    def __init__(
        self, args: Sequence[str], env: dict[str, str], address: str, crash_at: str | None
    ) -> None:
        self.address = address
        faulty = [sys.executable, "-m", "sharedllm.testing.faulty_verifier", "--crash", crash_at]
        self.child = Child([*(faulty if crash_at else program("sharedllm-verifier")), *args], env)

    @property
    def process(self) -> subprocess.Popen:
        return self.child.process

    @property
    def lines(self) -> list[str]:
        return self.child.lines

    def wait_ready(self) -> None:
        self.child.wait_ready("the verifier", VERIFIER_READY_TIMEOUT_S)

    def verdict(self, job_id: str, timeout: float = 60.0) -> str:
        """The verifier's verdict line for ``job_id``, waiting for it if need be."""
        return self.said("verdict", job_id, timeout)

    def said(self, kind: str, job_id: str, timeout: float = 60.0) -> str:
        """The rest of the first ``kind`` line (``verdict``, ``dispute``, ``juror``) about
        ``job_id``, waiting for it if need be."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.startswith(f"{kind} {job_id} "):
                    return line.split(" ", 2)[2]
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise PeerError(f"no {kind} line for {job_id} (verifier output: {self.lines[-5:]})")

    def wait_exit(self, timeout: float = 60.0) -> int:
        return self.child.wait_exit(timeout)

    def stop(self) -> None:
        self.child.stop(10)
