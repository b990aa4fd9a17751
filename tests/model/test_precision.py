"""Lighter precisions as models of their own: ``--precision int8`` writes torchao int8
weights under a new model id, spans load them bit for bit, and answer as ``generate`` on
the same quantized weights does."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from sharedllm.cli import sharedllm_main
from sharedllm.errors import ModelError
from sharedllm.model.architecture import config_from_dict, load_weights, skeleton
from sharedllm.model.client_model import ClientModel
from sharedllm.model.importer import import_model
from sharedllm.model.manifest import parse_manifest
from sharedllm.model.precision import estimated_layer_bytes
from sharedllm.model.shards import decode_modules
from sharedllm.model.span import SpanRunner
from sharedllm.model.store import ModelStore
from tests.model import families
from tests.model.model_helpers import generate_with_spans

pytestmark = pytest.mark.model

PROMPT = "What is the capital of France?"


@pytest.fixture(scope="module")
def llama(tmp_path_factory, client_model):
    folder = tmp_path_factory.mktemp("precision-checkpoints")
    return families.make_checkpoint(folder, "llama", client_model.tokenizer)


@pytest.fixture(scope="module")
def imported(tmp_path_factory, llama):
    store = ModelStore(tmp_path_factory.mktemp("precision-models"))
    return (
        store,
        import_model(store, llama).manifest,
        import_model(store, llama, precision="int8").manifest,
    )


def test_int8_is_a_model_of_its_own(imported):
    store, float32, int8 = imported
    assert int8.model_id != float32.model_id and int8.dtype == "int8"
    assert float32.dtype == "float32"
    # The client's parts stay float32 and are shared; every layer shard differs.
    assert (int8.embed_shard, int8.head_shard) == (float32.embed_shard, float32.head_shard)
    assert not set(int8.layer_shards) & set(float32.layer_shards)
    size = lambda h: store.shard_path(h).stat().st_size  # noqa: E731
    assert size(int8.layer_shards[0]) < 0.35 * size(float32.layer_shards[0])
    runner = SpanRunner(store, int8, 0, 2)
    assert type(runner.layers[0].self_attn.q_proj.weight).__name__ == "Int8Tensor"
    assert type(runner.layers[0].input_layernorm.weight) is torch.nn.Parameter


def test_int8_spans_answer_as_generate_on_the_same_weights(imported, llama):
    store, _, int8 = imported
    client = ClientModel(store, int8)
    ids = client.prompt_ids(PROMPT)
    runners = [SpanRunner(store, int8, a, b) for a, b in families.SPANS]
    expected, logits = families.reference(llama, ids, 12, precision="int8")
    ours = generate_with_spans(client, runners, ids, 12)
    assert ours == expected[: len(ours)] and len(ours) == len(expected)
    hidden = client.embed(ids)
    for runner in runners:
        hidden = runner.prefill(hidden)
    torch.testing.assert_close(client.next_logits(hidden), logits, atol=1e-4, rtol=1e-4)


def test_int8_differs_from_float32_by_quantization_only(imported):
    """Proof that the int8 spans run other weights, and by how much: about 1% of the hidden
    state's norm after six layers, against 0 between two loads of one precision."""
    store, float32, int8 = imported
    client = ClientModel(store, float32)
    hidden = client.embed(client.prompt_ids(PROMPT))
    outs = {}
    for name, manifest in (("f32", float32), ("i8", int8), ("i8 again", int8)):
        out = hidden
        for a, b in families.SPANS:
            out = SpanRunner(store, manifest, a, b).prefill(out)
        outs[name] = out
    assert torch.equal(outs["i8"], outs["i8 again"])
    relative = float((outs["i8"] - outs["f32"]).norm() / outs["f32"].norm())
    assert 1e-4 < relative < 0.05


def test_a_reimport_in_int8_is_a_no_op_and_keeps_the_default(imported, llama):
    store, float32, int8 = imported
    default = store.default_model_id()
    again = import_model(store, llama, precision="int8")
    assert again.reused and again.manifest.model_id == int8.model_id
    assert import_model(store, llama).manifest.model_id == float32.model_id
    assert store.default_model_id() == default


def _layer_tensors(store: ModelStore, manifest) -> dict[str, torch.Tensor]:
    return st_load(store.read_shard(manifest.layer_shards[0], what="layer"))


def test_shards_of_one_precision_do_not_load_as_another(imported):
    store, float32, int8 = imported
    data = store.read_shard(int8.layer_shards[0], what="layer")
    with pytest.raises(ModelError, match="which a float32 model has not") as refused:
        decode_modules(data, ("layer",), "layer 0 shard", "float32")
    assert refused.value.code == "SHARD_MISMATCH"
    # A float32 shard is not int8: its weights carry no scales, and load as float32 only.
    plain = decode_modules(
        store.read_shard(float32.layer_shards[0], what="l"), ("layer",), "l", "int8"
    )
    assert all(t.dtype == torch.float32 for t in plain["layer"].values())


@pytest.mark.parametrize(
    "damage, message",
    [
        ("drop_scale", "which a int8 model has not"),
        ("orphan_scale", "does not fit the architecture"),
        ("zero_scale", "not positive"),
        ("bad_shape", r"int8 \[out, in\]"),
    ],
)
def test_a_damaged_int8_shard_is_refused(imported, damage, message):
    store, _, int8 = imported
    tensors = _layer_tensors(store, int8)
    key = "layer.self_attn.q_proj.weight"
    if damage == "drop_scale":
        del tensors[key + "_scale"]
    elif damage == "orphan_scale":
        tensors["layer.self_attn.nothing_scale"] = torch.ones(4, 1)
    elif damage == "zero_scale":
        tensors[key + "_scale"] = torch.zeros_like(tensors[key + "_scale"])
    else:
        tensors[key + "_scale"] = tensors[key + "_scale"][:-1]
    layer = skeleton(config_from_dict(int8.config)).layers[0]
    with pytest.raises(ModelError, match=message) as refused:
        weights = decode_modules(st_save(tensors), ("layer",), "layer 0 shard", "int8")
        load_weights(layer, weights["layer"], "layer 0 shard")
    assert refused.value.code == "SHARD_MISMATCH"


def test_a_family_without_linear_weights_is_refused_in_int8(tmp_path, client_model):
    folder = families.make_checkpoint(tmp_path, "gpt2", client_model.tokenizer)
    with pytest.raises(ModelError, match="no nn.Linear weights for int8") as refused:
        import_model(ModelStore(tmp_path / "models"), folder, precision="int8")
    assert refused.value.code == "UNSUPPORTED_MODEL"


def test_a_manifest_names_a_known_precision(imported):
    store, float32, _ = imported
    body = float32.to_body() | {"dtype": "int3"}
    with pytest.raises(ModelError, match="not a known precision"):
        parse_manifest(json.dumps(body).encode())


def test_the_command_line_imports_in_int8(tmp_path, llama, monkeypatch, capsys):
    monkeypatch.setenv("SHAREDLLM_HOME", str(tmp_path))
    assert sharedllm_main(["model", "import", str(llama), "--precision", "int8", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["precision"] == "int8" and not row["reused"]
    assert sharedllm_main(["model", "list", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["model_id"] == row["model_id"] and listed["precision"] == "int8"
    assert sharedllm_main(["model", "import", str(llama), "--precision", "int4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: [USAGE] ") and "'int4' is not one of 'float32', 'int8'" in err


def test_placement_counts_the_precisions_layer_size(imported):
    """``--layers auto`` on a node without the shards yet estimates a layer's bytes in the
    model's precision, close to what the shards weigh."""
    store, float32, int8 = imported
    for manifest in (float32, int8):
        size = store.shard_path(manifest.layer_shards[0]).stat().st_size
        estimate = estimated_layer_bytes(manifest.config, manifest.dtype)
        assert abs(estimate - size) < 0.05 * size, (manifest.dtype, estimate, size)
