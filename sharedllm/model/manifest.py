"""The manifest: what a model is made of, and the hash that names it.

A manifest is canonical JSON (sorted keys, no spaces, ASCII) so that every machine that
imports the same checkpoint derives the same bytes and therefore the same model id; the id
is the sha256 of those bytes, written as a 0x-prefixed bytes32 so it can go on-chain as is.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from sharedllm.errors import ModelError

FORMAT_VERSION = 1
# What a manifest's dtype may be: the precision of its decoder layers (model/precision.py).
FLOAT32 = "float32"
INT8 = "int8"
PRECISIONS = (FLOAT32, INT8)
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_MODEL_ID = re.compile(r"^0x[0-9a-f]{64}$")


def canonical_json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def model_id_of(canonical: bytes) -> str:
    return "0x" + sha256_hex(canonical)


def check_shard_hash(value: object, field_name: str) -> str:
    if not isinstance(value, str) or not _SHA256_HEX.match(value):
        raise ModelError(f"{field_name} must be 64 lowercase hex digits", code="BAD_MANIFEST")
    return value


def check_model_id(value: object) -> str:
    if not isinstance(value, str) or not _MODEL_ID.match(value.lower()):
        raise ModelError(f"model id must be 0x + 64 hex digits, got {value!r}", code="BAD_MODEL_ID")
    return value.lower()


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest; ``model_id`` is the hash of the canonical JSON it came from."""

    model_id: str
    name: str
    num_layers: int
    hidden_size: int
    vocab_size: int
    dtype: str
    embed_shard: str
    head_shard: str
    layer_shards: tuple[str, ...]
    tokenizer_shard: str
    config: dict[str, Any] = field(hash=False, compare=False)
    eos_token_ids: tuple[int, ...] = ()

    @property
    def context_length(self) -> int | None:
        """The most positions one sequence may hold (the config's max_position_embeddings,
        which GPT-2's config calls n_positions)."""
        for key in ("max_position_embeddings", "n_positions"):
            value = self.config.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return None

    def shards(self) -> tuple[str, ...]:
        """Every shard the model needs, embed and head first."""
        return (self.embed_shard, self.head_shard, self.tokenizer_shard, *self.layer_shards)

    def to_body(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "name": self.name,
            "num_layers": self.num_layers,
            "hidden_size": self.hidden_size,
            "vocab_size": self.vocab_size,
            "dtype": self.dtype,
            "embed_shard": self.embed_shard,
            "head_shard": self.head_shard,
            "layer_shards": list(self.layer_shards),
            "tokenizer_shard": self.tokenizer_shard,
            "config": self.config,
            "eos_token_ids": list(self.eos_token_ids),
        }

    def canonical(self) -> bytes:
        return canonical_json(self.to_body())


def _field(body: dict[str, Any], name: str, kind: type) -> Any:
    if name not in body:
        raise ModelError(f"manifest lacks field {name!r}", code="BAD_MANIFEST")
    value = body[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ModelError(f"manifest field {name!r} must be {kind.__name__}", code="BAD_MANIFEST")
    return value


def _precision(value: str) -> str:
    if value not in PRECISIONS:
        raise ModelError(f"manifest dtype {value!r} is not a known precision", code="BAD_MANIFEST")
    return value


def parse_manifest(data: bytes) -> Manifest:
    """Parse manifest bytes strictly; the id is computed, never trusted from the bytes."""
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"manifest is not JSON: {exc}", code="BAD_MANIFEST") from exc
    if not isinstance(body, dict):
        raise ModelError("manifest must be a JSON object", code="BAD_MANIFEST")
    if _field(body, "format", int) != FORMAT_VERSION:
        raise ModelError(f"manifest format {body['format']} is not supported", code="BAD_MANIFEST")
    layers = _field(body, "layer_shards", list)
    num_layers = _field(body, "num_layers", int)
    if len(layers) != num_layers or num_layers < 1:
        raise ModelError("layer_shards must list num_layers hashes", code="BAD_MANIFEST")
    eos = _field(body, "eos_token_ids", list)
    if not all(isinstance(t, int) and not isinstance(t, bool) for t in eos):
        raise ModelError("eos_token_ids must be integers", code="BAD_MANIFEST")
    manifest = Manifest(
        model_id="",
        name=_field(body, "name", str),
        num_layers=num_layers,
        hidden_size=_field(body, "hidden_size", int),
        vocab_size=_field(body, "vocab_size", int),
        dtype=_precision(_field(body, "dtype", str)),
        embed_shard=check_shard_hash(_field(body, "embed_shard", str), "embed_shard"),
        head_shard=check_shard_hash(_field(body, "head_shard", str), "head_shard"),
        layer_shards=tuple(check_shard_hash(h, f"layer_shards[{i}]") for i, h in enumerate(layers)),
        tokenizer_shard=check_shard_hash(_field(body, "tokenizer_shard", str), "tokenizer_shard"),
        config=_field(body, "config", dict),
        eos_token_ids=tuple(eos),
    )
    canonical = manifest.canonical()
    return replace(manifest, model_id=model_id_of(canonical))


def build_manifest(**fields: Any) -> Manifest:
    """A manifest from typed fields, with its id derived from its canonical form."""
    draft = Manifest(model_id="", **fields)
    return replace(draft, model_id=model_id_of(draft.canonical()))
