"""Other ways to split the model: uneven spans, one node for all layers, and a node that
picks its span itself (--layers auto) and fetches the shards it lacks from a peer."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from net_helpers import network_tokens
from reference import PROMPTS

from sharedllm.model.store import ModelStore
from sharedllm.node.local import local_nodes, start_node
from sharedllm.placement.span_choice import RUNTIME_OVERHEAD_BYTES

pytestmark = pytest.mark.nodes


@pytest.fixture(scope="module")
def nodes(model_home: Path):
    with local_nodes(["0:7", "7:23", "23:30", "0:30"]) as started:
        yield {f"{n.span[0]}:{n.span[1]}": n for n in started}


@pytest.mark.slow
@pytest.mark.parametrize("prompt", PROMPTS)
def test_uneven_spans_match_generate(nodes, client_model, generate_baseline, prompt):
    urls = [nodes[s].url for s in ("0:7", "7:23", "23:30")]
    assert network_tokens(client_model, urls, prompt) == generate_baseline[prompt]


@pytest.mark.slow
@pytest.mark.parametrize("prompt", PROMPTS)
def test_one_node_for_all_layers_matches_generate(nodes, client_model, generate_baseline, prompt):
    assert network_tokens(client_model, [nodes["0:30"].url], prompt) == generate_baseline[prompt]


def test_auto_span_fills_the_gap_with_fetched_shards(
    nodes, store, manifest, client_model, generate_baseline, tmp_path
):
    # A node whose store holds the manifest but no shard at all.
    home = tmp_path / "home"
    empty = ModelStore(home / "models")
    empty.manifests_dir.mkdir(parents=True)
    shutil.copy(store.manifest_path(manifest.model_id), empty.manifest_path(manifest.model_id))
    empty.set_default(manifest.model_id)

    layer_bytes = store.shard_path(manifest.layer_shards[0]).stat().st_size
    cache_mb = 32
    budget = RUNTIME_OVERHEAD_BYTES + (cache_mb << 20) + int(16.5 * layer_bytes)
    peers = [nodes["0:7"].url, nodes["23:30"].url, nodes["0:30"].url]
    args = ["--memory-budget", str(budget), "--cache-mb", str(cache_mb)]
    for url in peers:
        args += ["--peer", url]
    node = start_node("auto", *args, env={"SHAREDLLM_HOME": str(home)})
    try:
        # 16 layers fit; 7:23 is the window the peers cover least (once, by 0:30).
        assert node.span == (7, 23)
        assert all(empty.has_shard(h) for h in manifest.layer_shards[7:23])
        assert not any(empty.has_shard(h) for h in manifest.layer_shards[:7])
        urls = [nodes["0:7"].url, node.url, nodes["23:30"].url]
        prompt = PROMPTS[0]
        assert network_tokens(client_model, urls, prompt) == generate_baseline[prompt]
    finally:
        node.stop()
