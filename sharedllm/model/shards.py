"""Shard bytes: tensors in safetensors format (float32, or a precision's plain tensors), and
the tokenizer as one JSON blob."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from sharedllm.errors import ModelError
from sharedllm.model.precision import FLOAT32, module_tensors, plain_tensors


def encode_modules(modules: dict[str, nn.Module]) -> bytes:
    """One safetensors file holding each module's weights under ``<name>.<param>``: float32,
    or for a quantized weight its int8 values and scales (``model/precision.py``)."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        # A copy per tensor: tied weights must not share storage inside a file.
        for key, tensor in plain_tensors(module.state_dict()).items():
            tensors[f"{name}.{key}"] = tensor
    return st_save(tensors)


def decode_modules(
    data: bytes, names: tuple[str, ...], what: str, precision: str = FLOAT32
) -> dict[str, dict]:
    """Split a shard's tensors back into per-module state dicts of ``precision``."""
    try:
        tensors = st_load(data)
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise ModelError(f"{what} is not a safetensors file: {exc}", code="SHARD_CORRUPT") from exc
    grouped: dict[str, dict[str, torch.Tensor]] = {name: {} for name in names}
    for key, tensor in tensors.items():
        name, _, rest = key.partition(".")
        if name not in grouped:
            raise ModelError(f"{what} holds an unexpected tensor {key!r}", code="SHARD_MISMATCH")
        grouped[name][rest] = tensor
    return {name: module_tensors(group, precision, what) for name, group in grouped.items()}


def encode_tokenizer(tokenizer: Any) -> bytes:
    """The tokenizer's saved files (vocab, config, chat template) packed as canonical JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        files = {p.name: p.read_text() for p in sorted(Path(tmp).iterdir()) if p.is_file()}
    body = {"kind": "hf-tokenizer", "files": files}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def decode_tokenizer(data: bytes) -> Any:
    from transformers import AutoTokenizer

    try:
        body = json.loads(data)
        files = body["files"]
        if body.get("kind") != "hf-tokenizer" or not isinstance(files, dict):
            raise ValueError("not an hf-tokenizer blob")
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"tokenizer shard does not parse: {exc}", code="SHARD_CORRUPT") from exc
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in files.items():
            if "/" in name or name.startswith("."):
                raise ModelError(f"tokenizer shard names a bad file {name!r}", code="SHARD_CORRUPT")
            (Path(tmp) / name).write_text(text)
        return AutoTokenizer.from_pretrained(tmp, local_files_only=True)
