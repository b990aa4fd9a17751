"""The model library's own building blocks for an architecture, found from its config.

Nothing here implements attention or normalisation: the decoder layers, the rotary
embedding, the final norm, the embedding and the head are the exact modules that
``transformers`` would build for the whole model. We build that whole model on the
``meta`` device (no memory, no weight init) and keep only the parts a caller loads
weights into, so any decoder-only architecture laid out like Llama (``model.layers``,
``model.norm``, ``model.rotary_emb``, ``model.embed_tokens``, ``lm_head``) works unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from sharedllm.errors import ModelError

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Keys of an HF config that describe where a checkpoint came from, not what the model is;
# leaving them out keeps the model id stable across source paths and library versions.
VOLATILE_CONFIG_KEYS = ("_name_or_path", "transformers_version", "quantization_config")
ATTENTION = "sdpa"


def config_from_dict(config: dict[str, Any]) -> Any:
    """A ``PretrainedConfig`` for a manifest's config dict, set to the sdpa attention kernel."""
    from transformers import AutoConfig

    body = dict(config)
    model_type = body.pop("model_type", None)
    if not isinstance(model_type, str):
        raise ModelError("config lacks model_type", code="BAD_MANIFEST")
    try:
        cfg = AutoConfig.for_model(model_type, **body)
    except (ValueError, TypeError) as exc:
        raise ModelError(f"config does not load: {exc}", code="UNSUPPORTED_MODEL") from exc
    cfg._attn_implementation = ATTENTION
    return cfg


def portable_config(cfg: Any, architecture: str) -> dict[str, Any]:
    """The config dict that goes into a manifest."""
    body = cfg.to_dict()
    for key in VOLATILE_CONFIG_KEYS:
        body.pop(key, None)
    body["architectures"] = [architecture]
    body["dtype"] = "float32"
    return body


@dataclass
class Skeleton:
    """Weightless parts of one architecture; load weights with ``load_state_dict(assign=True)``."""

    config: Any
    embed: nn.Module
    norm: nn.Module
    head: nn.Module
    layers: nn.ModuleList
    rotary_cls: type


def skeleton(cfg: Any) -> Skeleton:
    from transformers import AutoModelForCausalLM

    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    except (ValueError, KeyError) as exc:
        raise ModelError(
            f"not a causal LM transformers knows: {exc}", code="UNSUPPORTED_MODEL"
        ) from exc
    return parts_of(model)


def parts_of(model: nn.Module) -> Skeleton:
    """The named parts of a causal LM (real or meta); a clear error if laid out otherwise."""
    base = getattr(model, "model", None)
    needed = ("layers", "norm", "rotary_emb", "embed_tokens")
    if base is None or any(not hasattr(base, n) for n in needed) or not hasattr(model, "lm_head"):
        raise ModelError(
            f"{type(model).__name__} is not laid out as model.layers/norm/rotary_emb/embed_tokens"
            " + lm_head; the span runner cannot split it",
            code="UNSUPPORTED_MODEL",
        )
    return Skeleton(
        config=model.config,
        embed=base.embed_tokens,
        norm=base.norm,
        head=model.lm_head,
        layers=base.layers,
        rotary_cls=type(base.rotary_emb),
    )


def load_weights(module: nn.Module, tensors: dict[str, torch.Tensor], what: str) -> nn.Module:
    """Fill a meta module with tensors, strictly: a missing or extra key is a corrupt shard."""
    try:
        module.load_state_dict(tensors, strict=True, assign=True)
    except RuntimeError as exc:
        raise ModelError(
            f"{what} does not fit the architecture: {exc}", code="SHARD_MISMATCH"
        ) from exc
    leftover = [n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.is_meta]
    if leftover:
        raise ModelError(f"{what} leaves {leftover} without weights", code="SHARD_MISMATCH")
    return module.eval().requires_grad_(False)
