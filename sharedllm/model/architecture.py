"""The model library's own building blocks for an architecture, found from its config.

Nothing here implements attention or normalisation: the decoder layers, the rotary
embedding, the final norm, the embedding and the head are the exact modules that
``transformers`` would build for the whole model. We build that whole model on the
``meta`` device (no memory, no weight init) and keep only the parts a caller loads
weights into. Where those parts live differs between families that are otherwise alike,
so a small table of layouts (``LAYOUTS``) names them: one entry per layout, not per model.
Llama, Mistral, Qwen, Gemma and their relatives share the first; GPT-2, GPT-NeoX and
Falcon each have their own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from sharedllm.errors import ModelError

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Keys of an HF config that describe where a checkpoint came from, not what the model is;
# leaving them out keeps the model id stable across source paths and library versions.
VOLATILE_CONFIG_KEYS = ("_name_or_path", "transformers_version", "quantization_config")
ATTENTION = "sdpa"
FALLBACK_ATTENTION = "eager"  # for families whose attention sdpa cannot express (softcapping)


@dataclass(frozen=True)
class Layout:
    """Where one layout of causal LM keeps the parts a span, a client and a verifier need.

    ``base`` is the attribute of the causal LM that holds the decoder stack; the others are
    attributes of that stack, but ``head``, which is the causal LM's own. ``positions`` is a
    learned absolute position embedding added to the token embedding (the client adds it, as
    the embedding's owner); ``rotary`` the rotary embedding every layer is handed, if any.
    """

    base: str
    layers: str
    norm: str
    embed: str
    head: str = "lm_head"
    rotary: str | None = "rotary_emb"
    positions: str | None = None


LAYOUTS = (
    Layout(base="model", layers="layers", norm="norm", embed="embed_tokens"),
    Layout(base="transformer", layers="h", norm="ln_f", embed="wte", rotary=None, positions="wpe"),
    Layout(base="gpt_neox", layers="layers", norm="final_layer_norm", embed="embed_in"),
    Layout(base="transformer", layers="h", norm="ln_f", embed="word_embeddings"),
)


def _model_class(cfg: Any) -> type:
    from transformers import AutoModelForCausalLM

    mapping = AutoModelForCausalLM._model_mapping
    if type(cfg) not in mapping:
        raise ModelError(
            f"{cfg.model_type} is not a causal LM this transformers knows", code="UNSUPPORTED_MODEL"
        )
    return mapping[type(cfg)]


def config_from_dict(config: dict[str, Any]) -> Any:
    """A ``PretrainedConfig`` for a manifest's config dict, set to the sdpa attention kernel
    where the family supports it and to the library's eager attention where it does not."""
    from transformers import AutoConfig

    body = dict(config)
    model_type = body.pop("model_type", None)
    if not isinstance(model_type, str):
        raise ModelError("config lacks model_type", code="BAD_MANIFEST")
    try:
        cfg = AutoConfig.for_model(model_type, **body)
    except (ValueError, TypeError) as exc:
        raise ModelError(f"config does not load: {exc}", code="UNSUPPORTED_MODEL") from exc
    sdpa = getattr(_model_class(cfg), "_supports_sdpa", False)
    cfg._attn_implementation = ATTENTION if sdpa else FALLBACK_ATTENTION
    return cfg


def portable_config(cfg: Any, architecture: str) -> dict[str, Any]:
    """The config dict that goes into a manifest."""
    body = cfg.to_dict()
    for key in VOLATILE_CONFIG_KEYS:
        body.pop(key, None)
    body["architectures"] = [architecture]
    body["dtype"] = "float32"
    return body


@dataclass(frozen=True)
class Scaling:
    """Constants a family's causal LM applies to the embedding and the logits in its own
    ``forward``, outside any module, so no shard carries them (Granite's multipliers,
    Gemma 2's final soft cap ``cap * tanh(x / cap)``)."""

    embedding_multiplier: float = 1.0
    logits_divisor: float = 1.0
    logit_softcap: float | None = None

    @classmethod
    def of(cls, config: Any) -> Scaling:
        cap = getattr(config, "final_logit_softcapping", None)
        return cls(
            embedding_multiplier=float(getattr(config, "embedding_multiplier", 1.0) or 1.0),
            logits_divisor=float(getattr(config, "logits_scaling", 1.0) or 1.0),
            logit_softcap=float(cap) if cap else None,
        )

    def embedding(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden if self.embedding_multiplier == 1.0 else hidden * self.embedding_multiplier

    def logits(self, logits: torch.Tensor) -> torch.Tensor:
        if self.logits_divisor != 1.0:
            logits = logits / self.logits_divisor
        if self.logit_softcap is not None:
            logits = torch.tanh(logits / self.logit_softcap) * self.logit_softcap
        return logits


@dataclass
class Skeleton:
    """Weightless parts of one architecture; load weights with ``load_state_dict(assign=True)``.

    ``positions`` is the learned absolute position embedding, where the layout has one;
    ``rotary_cls`` the rotary embedding's class, or None where positions are absolute;
    ``scaling`` the constants some families apply outside any module.
    """

    config: Any
    embed: nn.Module
    norm: nn.Module
    head: nn.Module
    layers: nn.ModuleList
    rotary_cls: type | None
    positions: nn.Module | None = None
    scaling: Scaling = field(default_factory=lambda: Scaling())


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


def layout_of(model: nn.Module) -> Layout:
    """The first layout whose parts the model has; a clear error naming what is missing."""
    missing: list[str] = []
    for layout in LAYOUTS:
        base = getattr(model, layout.base, None)
        wanted = [layout.layers, layout.norm, layout.embed, layout.rotary, layout.positions]
        lacks = [n for n in wanted if n and (base is None or not hasattr(base, n))]
        if not hasattr(model, layout.head):
            lacks.append(layout.head)
        if not lacks:
            return layout
        missing.append(f"{layout.base}: no {'/'.join(lacks)}")
    raise ModelError(
        f"{type(model).__name__} fits no known layout ({'; '.join(missing)}); "
        "the span runner cannot split it",
        code="UNSUPPORTED_MODEL",
    )


def parts_of(model: nn.Module) -> Skeleton:
    """The named parts of a causal LM (real or meta); a clear error if laid out otherwise."""
    layout = layout_of(model)
    base = getattr(model, layout.base)
    config = model.config
    if getattr(config, "alibi", False):
        raise ModelError(
            f"{type(model).__name__} uses ALiBi position biases, which its decoder stack "
            "builds for all layers at once; the span runner cannot split it",
            code="UNSUPPORTED_MODEL",
        )
    return Skeleton(
        config=config,
        embed=getattr(base, layout.embed),
        norm=getattr(base, layout.norm),
        head=getattr(model, layout.head),
        layers=getattr(base, layout.layers),
        rotary_cls=type(getattr(base, layout.rotary)) if layout.rotary else None,
        positions=getattr(base, layout.positions) if layout.positions else None,
        scaling=Scaling.of(config),
    )


def load_weights(module: nn.Module, tensors: dict[str, torch.Tensor], what: str) -> nn.Module:
    """Fill a meta module with tensors, strictly: a missing or extra key is a corrupt shard."""
    try:
        module.load_state_dict(tensors, strict=True, assign=True)
    except RuntimeError as exc:
        raise ModelError(
            f"{what} does not fit the architecture: {exc}", code="SHARD_MISMATCH"
        ) from exc
    _fill_scales(module)
    leftover = [n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.is_meta]
    if leftover:
        raise ModelError(f"{what} leaves {leftover} without weights", code="SHARD_MISMATCH")
    return module.eval().requires_grad_(False)


def _fill_scales(module: nn.Module) -> None:
    """Rebuild the constant scale an embedding keeps as a non-persistent buffer (Gemma's
    ``embed_scale``, from the ``scalar_embed_scale`` the module was built with): it is not in
    any checkpoint, so no shard carries it."""
    for sub in module.modules():
        scale = getattr(sub, "embed_scale", None)
        scalar = getattr(sub, "scalar_embed_scale", None)
        if isinstance(scale, torch.Tensor) and scale.is_meta and isinstance(scalar, float):
            sub.embed_scale = torch.tensor(scalar)
