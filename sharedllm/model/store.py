"""The local model store: content-addressed shards and the manifests that list them.

Layout under the root (``sharedllm.paths.models_dir()`` by default)::

    shards/<sha256>.safetensors   a layer, the embedding or the head (float32 tensors)
    shards/<sha256>.json          the tokenizer files packed into one JSON blob
    manifests/<model_id>.json     canonical manifest JSON; its sha256 is the model id
    default                       the id of the model used when none is named
    imports.json                  source fingerprint -> model id, so re-imports are no-ops

Every file is named by the hash of its bytes, so a shard fetched from an untrusted peer is
accepted only if its bytes hash to the name the manifest asked for.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path

from sharedllm import paths
from sharedllm.errors import ModelError
from sharedllm.model.manifest import (
    Manifest,
    check_model_id,
    check_shard_hash,
    parse_manifest,
    sha256_hex,
)

__all__ = ["Manifest", "ModelStore"]

_EXTENSIONS = (".safetensors", ".json")


def _looks_like_safetensors(data: bytes) -> bool:
    if len(data) < 9:
        return False
    (header_len,) = struct.unpack("<Q", data[:8])
    return data[8:9] == b"{" and 8 + header_len <= len(data)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ModelStore:
    """Shards and manifests on local disk."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else paths.models_dir()
        self.shards_dir = self.root / "shards"
        self.manifests_dir = self.root / "manifests"

    # Shards

    def shard_path(self, sha256_hex_: str) -> Path:
        """Where the shard lives (or would live, as safetensors, if it is not here yet)."""
        check_shard_hash(sha256_hex_, "shard hash")
        for ext in _EXTENSIONS:
            path = self.shards_dir / f"{sha256_hex_}{ext}"
            if path.exists():
                return path
        return self.shards_dir / f"{sha256_hex_}.safetensors"

    def has_shard(self, sha256_hex_: str) -> bool:
        return self.shard_path(sha256_hex_).exists()

    def read_shard(self, sha256_hex_: str, *, what: str = "shard") -> bytes:
        """The shard's bytes, after checking they hash to its name."""
        path = self.shard_path(sha256_hex_)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ModelError(
                f"{what} {sha256_hex_} is not in the store ({self.shards_dir})",
                code="SHARD_MISSING",
                shard=sha256_hex_,
                what=what,
            ) from None
        actual = sha256_hex(data)
        if actual != sha256_hex_:
            raise ModelError(
                f"{what} {sha256_hex_} is corrupt: its bytes hash to {actual}",
                code="SHARD_CORRUPT",
                shard=sha256_hex_,
                what=what,
            )
        return data

    def add_shard_bytes(self, sha256_hex_: str, data: bytes) -> Path:
        """Store bytes under their hash; refuses bytes that do not hash to the given name."""
        check_shard_hash(sha256_hex_, "shard hash")
        actual = sha256_hex(data)
        if actual != sha256_hex_:
            raise ModelError(
                f"shard bytes hash to {actual}, not {sha256_hex_}",
                code="SHARD_CORRUPT",
                shard=sha256_hex_,
            )
        ext = ".safetensors" if _looks_like_safetensors(data) else ".json"
        path = self.shards_dir / f"{sha256_hex_}{ext}"
        if not path.exists():
            _write_atomic(path, data)
        return path

    def put_shard(self, data: bytes) -> str:
        """Store bytes and return their hash."""
        digest = sha256_hex(data)
        self.add_shard_bytes(digest, data)
        return digest

    # Manifests

    def manifest_path(self, model_id: str) -> Path:
        return self.manifests_dir / f"{check_model_id(model_id)}.json"

    def manifest_bytes(self, model_id: str) -> bytes:
        path = self.manifest_path(model_id)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ModelError(
                f"model {model_id} is not imported here (no {path})", code="MODEL_NOT_FOUND"
            ) from None

    def manifest(self, model_id: str | None = None) -> Manifest:
        """The manifest of ``model_id``, or of the default model when None."""
        if model_id is None:
            model_id = self.default_model_id()
            if model_id is None:
                raise ModelError(
                    "no default model: run `sharedllm model import` first", code="MODEL_NOT_FOUND"
                )
        model_id = check_model_id(model_id)
        manifest = parse_manifest(self.manifest_bytes(model_id))
        if manifest.model_id != model_id:
            raise ModelError(
                f"manifest file for {model_id} hashes to {manifest.model_id}",
                code="BAD_MANIFEST",
            )
        return manifest

    def add_manifest_bytes(self, data: bytes) -> Manifest:
        """Store a manifest (e.g. fetched from a peer); its id is computed from the bytes."""
        manifest = parse_manifest(data)
        if manifest.canonical() != data:
            raise ModelError("manifest bytes are not in canonical form", code="BAD_MANIFEST")
        _write_atomic(self.manifest_path(manifest.model_id), data)
        return manifest

    def model_ids(self) -> list[str]:
        if not self.manifests_dir.is_dir():
            return []
        return sorted(p.stem for p in self.manifests_dir.glob("0x*.json"))

    # Default model and import records

    def default_model_id(self) -> str | None:
        try:
            text = (self.root / "default").read_text().strip()
        except FileNotFoundError:
            return None
        return check_model_id(text) if text else None

    def set_default(self, model_id: str) -> None:
        _write_atomic(self.root / "default", (check_model_id(model_id) + "\n").encode())

    def import_records(self) -> dict[str, str]:
        try:
            records = json.loads((self.root / "imports.json").read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise ModelError(f"imports.json is not JSON: {exc}", code="BAD_CONFIG") from exc
        return {str(k): str(v) for k, v in records.items()} if isinstance(records, dict) else {}

    def record_import(self, fingerprint: str, model_id: str) -> None:
        records = self.import_records()
        records[fingerprint] = check_model_id(model_id)
        body = json.dumps(records, sort_keys=True, indent=1).encode()
        _write_atomic(self.root / "imports.json", body)
