"""A node that lacks its span's shards fetches them from a peer before it starts, and says so
as it goes: a line per shard (off a terminal) with its layer, size, source and the running
total, then what it loads. Real processes: the peer is a node of the session's host."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sharedllm.model.store import ModelStore
from sharedllm.node.local import local_nodes

pytestmark = [pytest.mark.model, pytest.mark.nodes]


def test_a_node_without_shards_fetches_them_and_shows_each(
    model_home: Path, tmp_path: Path
) -> None:
    full = ModelStore(model_home / "models")
    manifest = full.manifest()
    bare = ModelStore(tmp_path / "models")
    bare.add_manifest_bytes(manifest.canonical())
    with local_nodes(["0:3"]) as (peer,):
        peer_url = f"{peer.url}#{peer.key}"
        with local_nodes(
            ["1:3"], "--models-dir", str(bare.root), "--model", manifest.model_id,
            "--peer", peer_url, "--no-rebalance",
        ) as (node,):  # fmt: skip
            log = "\n".join(node.child.lines)
            assert node.span == (1, 3)
    lines = re.findall(r"^fetching 2 layer shards: (.*)$", log, re.MULTILINE)
    assert len(lines) == 2, log
    for done, (line, layer) in enumerate(zip(lines, (1, 2), strict=True), 1):
        size = full.shard_path(manifest.layer_shards[layer]).stat().st_size
        assert line.startswith(f"layer {layer} ({size / 2**20:.1f} MiB) from {peer.url}; ")
        assert f"; {done}/2 layers, " in line
    assert f"starting: layers 1:3 of {manifest.name}" in log
    assert "starting: importing torch" not in log  # a fork of the session's node host
    assert all(bare.has_shard(h) for h in manifest.layer_shards[1:3])
    assert not bare.has_shard(manifest.layer_shards[0])
