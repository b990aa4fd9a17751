"""Shards are checked against their hashes; a bad or absent shard is a named, coded error."""

from __future__ import annotations

import shutil

import pytest

from sharedllm.errors import ModelError
from sharedllm.model.client_model import ClientModel
from sharedllm.model.manifest import sha256_hex
from sharedllm.model.span import SpanRunner
from sharedllm.model.store import ModelStore

pytestmark = pytest.mark.model


@pytest.fixture
def span_copy(tmp_path, store, manifest):
    """A private store holding the manifest and layers 0..2 only, safe to damage."""
    copy = ModelStore(tmp_path / "models")
    copy.add_manifest_bytes(store.manifest_bytes(manifest.model_id))
    copy.shards_dir.mkdir(parents=True)
    for shard in manifest.layer_shards[:2]:
        shutil.copy(store.shard_path(shard), copy.shards_dir)
    return copy


def test_manifest_id_is_the_hash_of_its_file(store, manifest):
    data = store.manifest_path(manifest.model_id).read_bytes()
    assert manifest.model_id == "0x" + sha256_hex(data)
    assert len(manifest.layer_shards) == manifest.num_layers == 30
    assert manifest.hidden_size == 576


def test_span_loads_from_a_store_holding_only_its_shards(span_copy, manifest):
    assert SpanRunner.missing_shards(span_copy, manifest, 0, 2) == []
    assert SpanRunner.missing_shards(span_copy, manifest, 1, 4) == list(manifest.layer_shards[2:4])
    runner = SpanRunner(span_copy, manifest, 0, 2)
    assert len(runner.layers) == 2


def test_missing_shard_names_the_layer(span_copy, manifest):
    with pytest.raises(ModelError) as excinfo:
        SpanRunner(span_copy, manifest, 1, 3)
    assert excinfo.value.code == "SHARD_MISSING"
    assert "layer 2" in excinfo.value.message
    assert manifest.layer_shards[2] in excinfo.value.message


def test_corrupt_shard_names_the_layer(span_copy, manifest):
    path = span_copy.shard_path(manifest.layer_shards[1])
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError) as excinfo:
        SpanRunner(span_copy, manifest, 0, 2)
    assert excinfo.value.code == "SHARD_CORRUPT"
    assert "layer 1" in excinfo.value.message
    assert manifest.layer_shards[1] in excinfo.value.message


def test_client_without_head_shard_fails_clearly(span_copy, manifest):
    with pytest.raises(ModelError) as excinfo:
        ClientModel(span_copy, manifest)
    assert excinfo.value.code == "SHARD_MISSING"


def test_add_shard_bytes_checks_the_hash(span_copy, store, manifest):
    shard = manifest.layer_shards[5]
    data = store.read_shard(shard)
    with pytest.raises(ModelError) as excinfo:
        span_copy.add_shard_bytes(shard, data[:-1] + b"\0")
    assert excinfo.value.code == "SHARD_CORRUPT"
    assert not span_copy.has_shard(shard)
    span_copy.add_shard_bytes(shard, data)
    assert span_copy.read_shard(shard) == data
