"""The precisions a model's decoder layers are stored and run in.

A precision belongs to the model, not to the node: ``sharedllm model import --precision int8``
writes a manifest of its own (``dtype`` says the precision, the layer shards hold its
weights), so its model id differs from the float32 import's, and a node, a client and a
verifier can never mix the two by accident. The embedding, the final norm and the head,
which only the client runs, stay float32.

``int8`` is torchao's int8 weight-only quantization (``Int8WeightOnlyConfig``: symmetric,
one float32 scale per output row) of every ``nn.Linear`` in a decoder layer; norms, biases
and any weight that is not an ``nn.Linear`` (GPT-2's ``Conv1D``, fused MoE experts) stay
float32. A shard stores the plain tensors (the int8 weight and its ``<name>.weight_scale``);
loading rebuilds torchao's ``Int8Tensor`` from them directly, with no float32 copy and no
re-quantization, so every node and verifier runs bit for bit the same weights. Activations
stay float32 on the wire and inside the layer.
"""

from __future__ import annotations

import torch
from torch import nn

from sharedllm.errors import ModelError
from sharedllm.model.manifest import FLOAT32, INT8, PRECISIONS

SCALE_SUFFIX = "_scale"


def check_precision(value: object) -> str:
    if value not in PRECISIONS:
        raise ModelError(
            f"precision {value!r} is not one of {', '.join(PRECISIONS)}", code="BAD_PRECISION"
        )
    return str(value)


def _int8_tensor_class() -> type:
    from torchao.quantization import Int8Tensor

    return Int8Tensor


def load_precision_library() -> None:
    """Import torchao now (a node host does, before it forks), not at a layer's first load."""
    _int8_tensor_class()


def quantize_layer(layer: nn.Module, precision: str) -> nn.Module:
    """A decoder layer's ``nn.Linear`` weights in ``precision``, in place (import only)."""
    if check_precision(precision) == FLOAT32:
        return layer
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    if not any(isinstance(m, nn.Linear) for m in layer.modules()):
        raise ModelError(
            f"{type(layer).__name__} has no nn.Linear weights for {precision} to quantize",
            code="UNSUPPORTED_MODEL",
        )
    quantize_(layer, Int8WeightOnlyConfig())
    return layer


def plain_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict as plain tensors for a shard: an int8 weight becomes its int8 values
    under the weight's own name and its per-row scales under ``<name>_scale``."""
    int8_tensor = _int8_tensor_class() if _any_subclass(state) else None
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if int8_tensor is not None and isinstance(tensor, int8_tensor):
            out[key] = tensor.qdata.contiguous().clone()
            out[key + SCALE_SUFFIX] = tensor.scale.to(torch.float32).contiguous().clone()
        else:
            out[key] = tensor.detach().to(torch.float32).contiguous().clone()
    return out


def _any_subclass(state: dict[str, torch.Tensor]) -> bool:
    return any(type(t) not in (torch.Tensor, nn.Parameter) for t in state.values())


def module_tensors(
    tensors: dict[str, torch.Tensor], precision: str, what: str
) -> dict[str, torch.Tensor]:
    """A shard's plain tensors as the state dict a module of ``precision`` loads: each int8
    weight and its ``<name>_scale`` become one ``Int8Tensor``, and every other tensor must be
    float32 (a stray one then fails the module's strict load)."""
    check_precision(precision)
    out: dict[str, torch.Tensor] = {}
    scales: set[str] = set()
    for key, tensor in tensors.items():
        if tensor.dtype == torch.float32:
            continue
        scale = key + SCALE_SUFFIX
        if precision != INT8 or tensor.dtype != torch.int8 or scale not in tensors:
            raise ModelError(
                f"{what} holds {key!r} as {tensor.dtype}, which a {precision} model has not",
                code="SHARD_MISMATCH",
            )
        out[key] = _int8_weight(tensor, tensors[scale], key, what)
        scales.add(scale)
    for key, tensor in tensors.items():
        if tensor.dtype == torch.float32 and key not in scales:
            out[key] = tensor
    return out


def _int8_weight(values: torch.Tensor, scale: torch.Tensor, key: str, what: str) -> torch.Tensor:
    rows, columns = values.shape if values.dim() == 2 else (0, 0)
    if values.dim() != 2 or scale.dtype != torch.float32 or tuple(scale.shape) != (rows, 1):
        raise ModelError(
            f"{what}: {key!r} must be int8 [out, in] with float32 scales [out, 1]",
            code="SHARD_MISMATCH",
        )
    if not bool(torch.isfinite(scale).all()) or bool((scale <= 0).any()):
        raise ModelError(f"{what}: {key!r} has a scale that is not positive", code="SHARD_MISMATCH")
    return _int8_tensor_class()(values, scale, [1, columns], torch.float32)


def dequantized(weight: torch.Tensor) -> torch.Tensor:
    """A float32 copy of a weight in any precision."""
    dequantize = getattr(weight, "dequantize", None)
    if type(weight) not in (torch.Tensor, nn.Parameter) and callable(dequantize):
        return dequantize().to(torch.float32)
    return weight.detach().to(torch.float32).clone()


def estimated_layer_bytes(cfg: dict[str, object], precision: str) -> int:
    """Bytes of one Llama-style decoder layer in ``precision``, for when no shard is here to
    measure: its Linear weights at the precision's width (with a float32 scale per row when
    quantized), its norms in float32."""
    hidden = _int(cfg, "hidden_size")
    heads = _int(cfg, "num_attention_heads", 1)
    head_dim = _int(cfg, "head_dim", 0) or hidden // heads
    kv_heads = _int(cfg, "num_key_value_heads", heads)
    inter = _int(cfg, "intermediate_size", 4 * hidden)
    attention = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim
    linear = attention + 3 * hidden * inter
    if precision == FLOAT32:
        return 4 * (linear + 2 * hidden)
    rows = heads * head_dim + 2 * kv_heads * head_dim + 2 * hidden + 2 * inter
    return linear + 4 * rows + 4 * 2 * hidden


def _int(cfg: dict[str, object], key: str, default: int | None = None) -> int:
    value = cfg.get(key, default)
    if value is None and default is not None:
        return default
    if not isinstance(value, int | float | str):
        raise ModelError(f"config {key}: expected a number, got {value!r}", code="BAD_MANIFEST")
    return int(value)
