"""Nodes on separate hosts: each in a network namespace of its own on one switch, one behind
a NAT router (nftables masquerade, nothing reaches it from outside) reachable only through
a relay, and the client on another host. The answer through the NAT'ed node equals
`generate`'s; a relay that alters the bytes it carries breaks the link (TLS ends at the
node) and the client fails over to another node, the text unchanged. The test makes
every namespace itself and removes them, also when it fails."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from netns import Hosts, sweep, unavailable
from reference import PROMPTS

from sharedllm.node.local import LocalNode, StartingNode
from sharedllm.processes import Child, program

pytestmark = pytest.mark.nodes

TOKENS = 16
CLIENT = str(Path(__file__).parents[1] / "netns_client.py")
RELAYS = {"honest": 7000, "flip": 7001}  # replays through a relay: tests/relay (loopback)


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


@pytest.fixture(scope="module")
def net(hosts: Hosts, client_model, tmp_path_factory: pytest.TempPathFactory):
    keys = tmp_path_factory.mktemp("netns-keys")
    # Past the prompt's frame (float32 hidden states) and about six one-token steps more, so
    # that the relay tampers mid-answer.
    hidden = client_model.manifest.hidden_size
    flip_after = len(client_model.prompt_ids(PROMPTS[0])) * hidden * 4 + 6 * (hidden * 4 + 600)
    relay_ns, relay_ip = hosts.host("relay", 2)
    children: list[Child] = []
    starting: dict[str, StartingNode] = {}
    try:
        for name, port in RELAYS.items():
            relay = [*program("sharedllm"), "relay"]
            if name != "honest":
                relay = [sys.executable, "-m", "sharedllm.testing.faulty_relay", "--tamper",
                         name, "--after-bytes", str(flip_after)]  # fmt: skip
            first = 40000 + 10 * (port - 7000)
            db = str(keys / f"{name}.db")
            args = ["--host", relay_ip, "--port", str(port),
                    "--ports", f"{first}-{first + 9}", "--db", db]  # fmt: skip
            children.append(Child(hosts.inside(relay_ns, [*relay, *args])))
        for child in children:
            child.wait_ready("relay")

        def node(name: str, span: str, address: str, ns: str, *extra: str) -> None:
            # --no-host: the session's node host forks in this machine's own namespace.
            args = ["--host", address, "--threads", "1", "--node-key", str(keys / name),
                    "--no-host", *extra]  # fmt: skip
            starting[name] = StartingNode(span, args, None, under=hosts.inside(ns, []))

        for name, span, octet in (("a", "0:10", 11), ("c", "20:30", 13)):
            ns, address = hosts.host(name, octet)
            node(name, span, address, ns)
        for i, name in enumerate(RELAYS):
            ns, address, _ = hosts.behind_nat(f"nat{i}", 20 + i)
            node(name, "10:20", address, ns, "--relay", f"{relay_ip}:{RELAYS[name]}")
        started = {name: s.wait() for name, s in starting.items()}
        client_ns, _ = hosts.host("client", 10)
        yield started, client_ns
    finally:
        for s in starting.values():
            s.child.terminate()
        for child in children:
            child.terminate()
        for s in starting.values():
            s.child.wait_stopped(10)
        for child in children:
            child.wait_stopped(10)


def _ask(hosts: Hosts, client_ns: str, nodes: list[LocalNode], later: list[LocalNode]) -> dict:
    command = [sys.executable, CLIENT, PROMPTS[0], str(TOKENS), *(n.pinned_url for n in nodes)]
    command += ["--later", *(n.pinned_url for n in later)]
    done = hosts.run(client_ns, *command, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_an_answer_through_a_node_behind_nat_equals_generate(
    hosts: Hosts, net, generate_baseline
) -> None:
    started, client_ns = net
    natted = started["honest"]
    assert natted.url.startswith("https://10.77.0.2:400")  # its address on the relay
    assert any("reach: only through relay" in line for line in natted.log), natted.log[-20:]
    assert any("reach: directly at" in line for line in started["a"].log)
    answer = _ask(hosts, client_ns, [started["a"], natted, started["c"]], [])
    assert answer["route"] == [started["a"].url, natted.url, started["c"].url]
    assert answer["tokens"] == generate_baseline[PROMPTS[0]][:TOKENS]
    assert answer["failovers"] == []


def test_a_relay_that_alters_bytes_breaks_the_link_and_the_answer_goes_around(
    hosts: Hosts, net, generate_baseline
) -> None:
    """The relay flips a byte of the stream towards the node some tokens into the answer.
    The node's TLS refuses the record (nothing altered is ever run), the hop before it names
    it, and the client replays the span onto the other NAT'ed node, behind an honest relay."""
    started, client_ns = net
    bad = started["flip"]
    answer = _ask(hosts, client_ns, [started["a"], bad, started["c"]], [started["honest"]])
    assert answer["tokens"] == generate_baseline[PROMPTS[0]][:TOKENS]
    assert answer["failovers"] == [bad.url]
    assert 0 < answer["failed_at"] < TOKENS  # mid-answer
    assert answer["route"][1] == started["honest"].url
    assert bad.process.poll() is None  # the node lives; only the link broke
