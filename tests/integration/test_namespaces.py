"""A paid network on separate hosts: every node, the relays, the chain's RPC and the client in
network namespaces of their own on one switch; two nodes behind NAT routers (nftables
masquerade, nothing reaches them from outside), each reachable only through a relay. A paid
answer through a NAT'ed node equals `generate`'s and settles on-chain; a relay that alters
or replays the bytes it carries mid-answer breaks the link (TLS ends at the node), and the
client hands the span to the other NAT'ed node under the same job, the text unchanged; a
relay that cuts the link after a step got through leaves that step paid to the node that ran
it, under the same job. The test makes every namespace itself and removes them, also when it
fails."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest
from netns import Hosts, sweep, unavailable
from reference import PROMPTS

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.devnet import Devnet
from sharedllm.chain.node_keys import load_or_create_node_key, public_key_bytes32
from sharedllm.chain.registry import NodeConfig
from sharedllm.localnet import NODE_PRICE, NODE_STAKE
from sharedllm.node.local import LocalNode, StartingNode
from sharedllm.processes import Child, program

pytestmark = [pytest.mark.nodes, pytest.mark.chain]

TOKENS = 16
TESTS = Path(__file__).parents[1]
CLIENT = 4
RPC = "10.77.0.5:8545"  # the chain's RPC as the namespaces see it
# name: (dev account, span, relay port or None, host octet); a relay's first public port is
# 40000 + 10 x (its port - 7000), and each relay here serves one node.
NODES = {
    "a": (1, "0:10", None, 11),
    "honest": (2, "10:20", 7000, 20),
    "c": (3, "20:30", None, 13),
    "flip": (5, "10:20", 7001, 21),
}
RELAY_IP = "10.77.0.2"


@pytest.fixture(scope="module")
def hosts():
    why = unavailable()
    if why is not None:
        pytest.skip(f"no network namespaces here: {why}")
    sweep()
    made = Hosts()
    try:
        yield made
    finally:
        made.close()


def _endpoint(name: str) -> str:
    _, _, relay, octet = NODES[name]
    if relay is None:
        return f"https://10.77.0.{octet}:7001"
    return f"https://{RELAY_IP}:{40000 + 10 * (relay - 7000)}"


@pytest.fixture(scope="module")
def net(hosts: Hosts, client_model, model_home: Path, tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("netns")
    children: list[Child] = []
    starting: dict[str, StartingNode] = {}
    socket_dir = Path(tempfile.mkdtemp(prefix="sl-rpc-"))  # short: a socket path is <108 bytes
    with Devnet(deployment_path=home / "deployment.json") as devnet:
        chain = devnet.chain()
        try:
            # The chain's RPC, reachable from the namespaces through a Unix socket only.
            rpc_sock = socket_dir / "rpc.sock"
            chain_ns, _ = hosts.host("chain", 5)
            forward = [sys.executable, str(TESTS / "forward.py")]
            children.append(Child([*forward, f"unix:{rpc_sock}", f"tcp:127.0.0.1:{devnet.port}"]))
            children[-1].wait_ready("rpc forward")
            children.append(
                Child(hosts.inside(chain_ns, [*forward, f"tcp:{RPC}", f"unix:{rpc_sock}"]))
            )
            # Past the prompt's frame and about six one-token steps more: mid-answer.
            hidden = client_model.manifest.hidden_size
            flip_after = len(client_model.prompt_ids(PROMPTS[0])) * hidden * 4
            flip_after += 6 * (hidden * 4 + 600)
            relay_ns, _ = hosts.host("relay", 2)
            for name, (_, _, port, _) in NODES.items():
                if port is None:
                    continue
                relay = [*program("sharedllm"), "relay"]
                if name == "flip":  # flips a byte on one connection, replays on the next,
                    # then cuts a connection after a request got through
                    relay = [sys.executable, "-m", "sharedllm.testing.faulty_relay", "--tamper",
                             "flip,replay,cut", "--after-bytes", str(flip_after)]  # fmt: skip
                first = 40000 + 10 * (port - 7000)
                args = ["--host", RELAY_IP, "--port", str(port), "--ports",
                        f"{first}-{first + 9}", "--db", str(home / f"{name}-relay.db")]  # fmt: skip
                children.append(Child(hosts.inside(relay_ns, [*relay, *args])))
            for child in children[1:]:
                child.wait_ready("forward or relay")

            for name, (account, span, relay_port, octet) in NODES.items():
                key = home / f"{name}.key"
                start, end = (int(x) for x in span.split(":"))
                config = NodeConfig(
                    _endpoint(name),
                    public_key_bytes32(load_or_create_node_key(key)),
                    client_model.manifest.model_id, start, end, NODE_PRICE,
                )  # fmt: skip
                chain.registry.stake(dev_account(account), NODE_STAKE, config, chain.token)
                if relay_port is None:
                    ns, address = hosts.host(name, octet)
                    extra = ["--port", "7001"]
                else:
                    ns, address, _ = hosts.behind_nat(name, octet)
                    extra = ["--relay", f"{RELAY_IP}:{relay_port}"]
                # --no-host: the session's node host forks in this machine's own namespace.
                args = ["--host", address, "--threads", "1", "--no-host", "--node-key",
                        str(key), "--dev-account", str(account), "--models-dir",
                        str(model_home / "models"), "--deployment",
                        str(devnet.deployment_path), "--rpc-url", f"http://{RPC}",
                        "--batch-size", "0", *extra]  # fmt: skip
                env = {"SHAREDLLM_HOME": str(home / name)}
                starting[name] = StartingNode(span, args, env, under=hosts.inside(ns, []))
            chain.market.deposit(dev_account(CLIENT), 5 * WEI_PER_SHARE, chain.token)
            started = {name: s.wait() for name, s in starting.items()}
            client_ns, _ = hosts.host("client", 10)
            yield started, client_ns, chain, devnet
        finally:
            for s in starting.values():
                s.child.terminate()
            for child in children:
                child.terminate()
            for s in starting.values():
                s.child.wait_stopped(10)
            for child in children:
                child.wait_stopped(10)
            shutil.rmtree(socket_dir, ignore_errors=True)


def _ask(hosts: Hosts, net, first: list[LocalNode]) -> dict:
    _, client_ns, _, devnet = net
    command = [sys.executable, str(TESTS / "netns_client.py"), PROMPTS[0], str(TOKENS),
               "--rpc-url", f"http://{RPC}", "--deployment", str(devnet.deployment_path),
               "--dev-account", str(CLIENT), "--book", str(devnet.deployment_path.parent /
               "client.db"), "--first", *(n.url for n in first)]  # fmt: skip
    done = hosts.run(client_ns, *command, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _settled(chain, job_id: str, timeout: float = 90.0) -> str:
    deadline = time.monotonic() + timeout
    while (status := chain.market.get_job(job_id).status) not in ("Submitted", "Finalized"):
        assert time.monotonic() < deadline, f"job {job_id} is {status}"
        time.sleep(0.3)
    return status


def test_a_paid_answer_through_a_node_behind_nat_equals_generate(
    hosts: Hosts, net, generate_baseline
) -> None:
    started, _, chain, _ = net
    natted = started["honest"]
    assert natted.url == _endpoint("honest")  # its address on the relay, as registered
    assert any("reach: only through relay" in line for line in natted.log), natted.log[-20:]
    assert any("reach: directly at" in line for line in started["a"].log)
    answer = _ask(hosts, net, [started["a"], natted, started["c"]])
    assert answer["route"] == [started["a"].url, natted.url, started["c"].url]
    assert answer["tokens"] == generate_baseline[PROMPTS[0]][:TOKENS]
    assert answer["failovers"] == []
    assert [_settled(chain, job) for job in answer["jobs"]] == ["Submitted"]


def _goes_around(hosts: Hosts, net, generate_baseline) -> dict:
    """An answer through the tampering relay: it equals generate's, the client hands the
    span to the other NAT'ed node (behind an honest relay) under the same job, amended, and
    the job settles."""
    started, _, chain, _ = net
    bad = started["flip"]
    answer = _ask(hosts, net, [started["a"], bad, started["c"]])
    assert answer["tokens"] == generate_baseline[PROMPTS[0]][:TOKENS]
    assert answer["failovers"] == [bad.url]
    assert 0 < answer["failed_at"] < TOKENS  # mid-answer
    assert answer["route"][1] == started["honest"].url
    assert bad.process.poll() is None  # the node lives; only the link broke
    assert len(answer["jobs"]) == 1  # the same job, amended to name the new holder
    assert len(answer["amended_from"]) == 1
    assert _settled(chain, answer["jobs"][0]) == "Submitted"
    return answer


def _failed_step_start(answer: dict) -> int:
    """The first position of the step that failed: the one whose output is token
    ``failed_at`` (token 0 comes from the prompt, token j from the step fed token j-1)."""
    return answer["prompt_positions"] + answer["failed_at"] - 1


@pytest.mark.parametrize("tamper", ["flip", "replay"])  # in this order: the relay's turns
def test_a_relay_that_alters_or_replays_bytes_breaks_the_link_and_the_answer_goes_around(
    hosts: Hosts, net, generate_baseline, tamper: str
) -> None:
    """The relay flips a byte of the stream towards the node some tokens into the answer (or
    sends a chunk twice). The node's TLS refuses the record (nothing altered or repeated is
    ever run), the hop before it names it, and the client hands the span over. A replayed
    chunk may be the last of a request that the node then ran: the next test's case."""
    answer = _goes_around(hosts, net, generate_baseline)
    if tamper == "flip":  # the altered request never ran: the new holder takes its step
        assert answer["amended_from"] == [_failed_step_start(answer)]


def test_a_step_that_ran_but_whose_answer_was_lost_is_paid_to_the_node_that_ran_it(
    hosts: Hosts, net, generate_baseline
) -> None:
    """The relay passes a step on to the node and cuts the connection before the node
    answers: the node ran the step and pushed it to the last hop, which holds its receipt,
    while the hop before it sees a broken link. The client waits for the node to be done
    with it, and the amendment hands the span over after that step, so the node that ran it
    is paid for it (the last hop refuses an amendment from before it); the resent step is
    answered from the last hop's history: one job, the text unchanged."""
    answer = _goes_around(hosts, net, generate_baseline)
    assert answer["amended_from"] == [_failed_step_start(answer) + 1]
