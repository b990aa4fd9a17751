"""A network that heals itself, against real node processes and the real model.

Three nodes on 0:10 that may move (``--rebalance``), and one pinned node each on 10:20 and
20:30, all told of one another with ``--peer``. The movers' stores hold only layers 0:10.
While membership is stable no node moves; when the 20:30 node is killed, exactly one of the
0:10 nodes fetches the shards of 20:30 from its peers and moves there, within a bounded
time, and the network answers again with ``generate``'s tokens.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from links import call_json, pinned_ssl
from net_helpers import network_tokens
from reference import PROMPTS

from sharedllm.chain.devnet import free_port
from sharedllm.model.store import ModelStore
from sharedllm.node.local import StartingNode

pytestmark = pytest.mark.nodes

INTERVAL_S = 1.5  # between looks; a look may wait up to twice this, and a move once more
STABLE_S = 15.0  # about five looks per movable node
MOVE_BOUND_S = 45.0
MOVED = re.compile(r"moved from layers (\d+):(\d+) to (\d+):(\d+) in ([\d.]+) s")
SPANS = ("0:10", "0:10", "0:10", "10:20", "20:30")


def _store_of_first_layers(store: ModelStore, manifest, home: Path) -> ModelStore:
    """A store with the model's manifest and only the shards of layers 0:10 (links)."""
    own = ModelStore(home / "models")
    own.manifests_dir.mkdir(parents=True)
    shutil.copy(store.manifest_path(manifest.model_id), own.manifest_path(manifest.model_id))
    own.set_default(manifest.model_id)
    for digest in manifest.layer_shards[:10]:
        own.shard_path(digest).parent.mkdir(parents=True, exist_ok=True)
        own.shard_path(digest).symlink_to(store.shard_path(digest))
    return own


@pytest.fixture
def network(model_home: Path, tmp_path: Path, store, manifest):
    ports = [free_port() for _ in SPANS]
    peers = [arg for p in ports for arg in ("--peer", f"https://127.0.0.1:{p}")]
    starting = []
    try:
        for i, (span, port) in enumerate(zip(SPANS, ports, strict=True)):
            env, movable = None, ()
            if i < 3:
                home = tmp_path / f"home{i}"
                _store_of_first_layers(store, manifest, home)
                env = {"SHAREDLLM_HOME": str(home)}
                movable = ("--rebalance", "--rebalance-interval", str(INTERVAL_S))
            extra = ["--port", str(port), "--node-key", str(tmp_path / f"node{i}.key"),
                     "--threads", "1", "--idle-timeout", "5", *movable, *peers]  # fmt: skip
            starting.append(StartingNode(span, extra, env))
        yield [s.wait() for s in starting]
    finally:
        for s in starting:
            s.child.terminate()
        for s in starting:
            s.child.stop(10)


def _moves(node) -> list[tuple[tuple[int, int], tuple[int, int], float]]:
    found = []
    for line in node.log:
        if m := MOVED.search(line):
            a, b, c, d = (int(x) for x in m.groups()[:4])
            found.append(((a, b), (c, d), float(m.group(5))))
    return found


def _span_at_info(node) -> tuple[int, int]:
    status, info = call_json(f"{node.url}/info", pinned_ssl(node))
    assert status == 200
    return tuple(info["span"])


@pytest.mark.slow  # about 25 s; the default run stays under its 20 minutes
def test_a_node_moves_to_layers_a_dead_node_left_and_the_network_answers_again(
    network, client_model, generate_baseline
):
    movers, pinned = network[:3], network[3:]
    time.sleep(STABLE_S)
    assert [_moves(n) for n in network] == [[]] * 5, "a stable network moved a node"

    killed_at = time.monotonic()
    pinned[1].kill()  # the only node on 20:30
    moved = []
    while not moved:
        assert time.monotonic() - killed_at < MOVE_BOUND_S, "no node moved to 20:30"
        time.sleep(0.5)
        moved = [n for n in movers if _moves(n)]
    healed_s = time.monotonic() - killed_at
    time.sleep(3 * INTERVAL_S)  # the others have looked again since
    assert len([n for n in movers if _moves(n)]) == 1, "more than one node moved"
    ((old, new, took),) = _moves(moved[0])
    assert (old, new) == ((0, 10), (20, 30)) and took < healed_s
    assert _span_at_info(moved[0]) == (20, 30)
    fetched = [line for line in moved[0].log if "fetched layer" in line]
    assert len(fetched) == 10  # layers 20..29, each checked against its hash as it came

    live = [n for n in network if n is not pinned[1]]
    urls = [n.pinned_url for n in live]
    prompt = PROMPTS[0]
    assert network_tokens(client_model, urls, prompt) == generate_baseline[prompt]
    print(f"healed in {healed_s:.1f} s (the move itself {took:.1f} s)")


@pytest.mark.slow
def test_minutes_of_stable_membership_move_no_node(network):
    """About sixty looks by each movable node over three minutes, and not one move."""
    deadline = time.monotonic() + 180.0
    while time.monotonic() < deadline:
        time.sleep(5.0)
        assert [_moves(n) for n in network] == [[]] * 5, "a stable network moved a node"
        assert all(n.process.poll() is None for n in network)
