"""Tiny random checkpoints of many model families, made here (seeded, nothing downloaded).

Each is a real ``transformers`` causal LM of six layers with hidden size 64, saved with the
default model's tokenizer so that chat prompts work, and with the family's own quirks set to
values far from neutral (Granite's multipliers, Gemma 2's soft caps), so that a runner that
ignored one would give different logits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

LAYERS = 6
SPANS = ((0, 2), (2, 4), (4, 6))

_COMMON: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": LAYERS,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
}
_MOE = {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32}

# family -> (config overrides, keys of _COMMON the family's config does not take)
FAMILIES: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "llama": ({}, ()),
    "qwen2": ({}, ()),
    "qwen3": ({"head_dim": 16}, ()),
    "qwen3_moe": ({"head_dim": 16, **_MOE}, ()),
    "mistral": ({}, ()),
    "phi3": ({}, ()),
    "olmo2": ({}, ()),
    "granite": (
        {
            "embedding_multiplier": 12.0,
            "logits_scaling": 8.0,
            "residual_multiplier": 0.22,
            "attention_multiplier": 0.0156,
        },
        (),
    ),
    "stablelm": ({}, ()),
    "gemma": ({"head_dim": 16}, ()),
    "gemma2": (
        {
            "head_dim": 16,
            "sliding_window": 8,
            "final_logit_softcapping": 3.0,
            "attn_logit_softcapping": 5.0,
        },
        (),
    ),
    "gpt2": (
        {"n_embd": 64, "n_layer": LAYERS, "n_head": 4, "n_positions": 512, "n_inner": 128},
        tuple(_COMMON),
    ),
    "gpt_neox": ({}, ("num_key_value_heads",)),
    "falcon": (
        {"num_kv_heads": 2, "new_decoder_architecture": True},
        ("num_key_value_heads", "intermediate_size"),
    ),
}


def config(family: str, tokenizer: Any, **overrides: Any) -> Any:
    from transformers import AutoConfig

    extra, dropped = FAMILIES[family]
    body = {k: v for k, v in _COMMON.items() if k not in dropped}
    body |= extra | overrides
    body |= {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    return AutoConfig.for_model(family, **body)


def make_checkpoint(folder: Path, family: str, tokenizer: Any, **overrides: Any) -> Path:
    """Write a seeded random checkpoint of ``family`` (config, weights, tokenizer) to
    ``folder/family`` and return that folder."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config(family, tokenizer, **overrides))
    out = folder / family
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def reference(
    folder: Path, ids: list[int], new_tokens: int, precision: str = "float32"
) -> tuple[list[int], torch.Tensor]:
    """``generate``'s greedy tokens for ``ids`` on the whole checkpoint, and the logits of
    the prompt's last position; for int8, with the decoder layers quantized by torchao as
    ``sharedllm model import --precision int8`` does."""
    from transformers import AutoModelForCausalLM

    from sharedllm.model.precision import quantize_layer

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    if precision != "float32":
        for layer in model.model.layers:
            quantize_layer(layer, precision)
    prompt = torch.tensor([ids])
    with torch.inference_mode():
        logits = model(prompt).logits[0, -1]
        out = model.generate(prompt, max_new_tokens=new_tokens, do_sample=False)
    return out[0, len(ids) :].tolist(), logits
