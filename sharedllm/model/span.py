"""Run a contiguous span of decoder layers, as a node does for its share of a model.

The layers are the library's own decoder layer modules, built with their global index
(so per-layer settings such as sliding windows apply as in the whole model) and fed the
library's rotary embedding and causal masks. The KV cache is the library's DynamicCache
sized for the whole model: layers outside the span never touch their slot, which stays
empty and costs nothing, and the span's layers index it exactly as ``generate`` would. Its
span layers are ``kv_cache.GrowingLayer`` (room kept ahead, not a concatenation per step),
and ``forward_batch`` runs several sessions' steps as one left-padded batch.
"""

from __future__ import annotations

import copy
import inspect

import torch
from torch import nn

from sharedllm.errors import ModelError, SessionError
from sharedllm.model.architecture import config_from_dict, load_weights, skeleton
from sharedllm.model.kv_cache import (
    Workspace,
    batch_cache,
    can_batch,
    padding_mask,
    session_cache,
)
from sharedllm.model.shards import decode_modules
from sharedllm.model.store import Manifest, ModelStore

_LAYER = "layer"


class SpanRunner:
    """Layers ``[start, end)`` of one model, loaded from hash-checked shards."""

    def __init__(
        self,
        store: ModelStore,
        manifest: Manifest,
        start: int,
        end: int,
        device: torch.device | None = None,
    ) -> None:
        """``device``: where the weights and caches live (the CPU by default); hidden states
        go in and come out as float32 on the CPU whatever it is."""
        _check_span(manifest, start, end)
        self.manifest = manifest
        self.start, self.end = start, end
        self.device = device or torch.device("cpu")
        self.config = config_from_dict(manifest.config)
        parts = skeleton(self.config)
        self.layers = nn.ModuleList()
        for index in range(start, end):
            shard = manifest.layer_shards[index]
            what = f"layer {index} shard"
            data = store.read_shard(shard, what=what)
            weights = decode_modules(data, (_LAYER,), what, manifest.dtype)[_LAYER]
            layer = load_weights(parts.layers[index], weights, what)
            self.layers.append(layer.to(self.device))
        self.rotary = (
            parts.rotary_cls(config=self.config).eval().to(self.device)
            if parts.rotary_cls
            else None
        )
        self._call = layer_call(self.layers[0])
        self._layer_types = getattr(self.config, "layer_types", None)
        self._mask_types = sorted({self._layer_type(i) for i in range(start, end)})
        self._workspace = Workspace()

    def part(self, start: int, end: int) -> SpanRunner:
        """Layers ``[start, end)`` of this span as a runner of their own, sharing its weights
        (a route may use any contiguous part of a node's span); the whole span is itself."""
        if (start, end) == (self.start, self.end):
            return self
        if not self.start <= start < end <= self.end:
            raise ModelError(
                f"layers {start}:{end} are not a part of the span {self.start}:{self.end}",
                code="BAD_SPAN",
            )
        view = copy.copy(self)
        view.start, view.end = start, end
        view.layers = self.layers[start - self.start : end - self.start]
        view._mask_types = sorted({self._layer_type(i) for i in range(start, end)})
        return view

    @staticmethod
    def missing_shards(store: ModelStore, manifest: Manifest, start: int, end: int) -> list[str]:
        """Hashes of the span's layer shards not yet in the store (to fetch from peers)."""
        _check_span(manifest, start, end)
        return [h for h in manifest.layer_shards[start:end] if not store.has_shard(h)]

    def new_cache(self):
        """A fresh KV cache for one session."""
        return session_cache(self.config, self.start, self.end)

    def cached_length(self, cache) -> int:
        return cache.get_seq_length(self.start)

    def forward(self, hidden: torch.Tensor, cache, start_pos: int) -> torch.Tensor:
        """Run the span on positions ``start_pos .. start_pos+T-1``; the cache grows by T."""
        if (
            hidden.dim() != 3
            or hidden.shape[0] != 1
            or hidden.shape[2] != self.manifest.hidden_size
        ):
            raise ModelError(
                f"hidden must be [1, T, {self.manifest.hidden_size}], got {list(hidden.shape)}",
                code="BAD_SHAPE",
            )
        seen = cache.get_seq_length(self.start)
        if start_pos != seen:
            raise SessionError(
                f"start_pos {start_pos} does not follow the {seen} positions already cached",
                code="BAD_POSITION",
            )
        hidden = hidden.to(self.device, torch.float32).contiguous()
        with torch.inference_mode():
            positions = torch.arange(start_pos, start_pos + hidden.shape[1], device=self.device)
            positions = positions.unsqueeze(0)
            rotary = self._rotary(hidden, positions)
            masks = self._masks(hidden, cache, positions)
            return self._layers(hidden, masks, positions, cache, rotary).cpu()

    def can_batch(self, cache) -> bool:
        """Whether a session's steps may join a batch (every span layer full attention)."""
        return self._mask_types == ["full_attention"] and can_batch(cache, self.start, self.end)

    def forward_batch(self, hiddens: list[torch.Tensor], caches: list) -> list[torch.Tensor]:
        """Several sessions' next steps, all of the same length, as one pass through the span.

        Each row keeps its own positions (rotary per row) and attends only to its own cache,
        left-padded to the longest with a 2-D mask, as ``generate`` runs a padded batch; each
        session's cache grows by its own step, as if it had run alone. Only the rounding of
        the matrix products differs from a lone step (the kernels block a batch of rows
        differently), by about the amount two thread counts differ by.
        """
        from transformers.masking_utils import create_causal_mask

        new = hiddens[0].shape[1]
        width = self.manifest.hidden_size
        if any(h.dim() != 3 or h.shape[0] != 1 or h.shape[1:] != (new, width) for h in hiddens):
            raise ModelError(f"a batch needs rows of shape [1, {new}, {width}]", code="BAD_SHAPE")
        if not all(self.can_batch(cache) for cache in caches):
            raise ModelError(
                "these layers or caches cannot run as a batch", code="UNSUPPORTED_MODEL"
            )
        lengths = [cache.get_seq_length(self.start) for cache in caches]
        longest = max(lengths)
        hidden = torch.cat([h.to(self.device, torch.float32) for h in hiddens], dim=0)
        positions = torch.tensor(lengths, device=self.device).unsqueeze(1)
        positions = positions + torch.arange(new, device=self.device).unsqueeze(0)
        batch = batch_cache(caches, self.start, self.end, longest, self._workspace)
        with torch.inference_mode():
            rotary = self._rotary(hidden, positions)
            mask = create_causal_mask(
                config=self.config,
                inputs_embeds=hidden,
                attention_mask=padding_mask(lengths, longest, new, self.device),
                cache=batch,
                position_ids=positions,
                layer_idx=self.start,
            )
            hidden = self._layers(hidden, {"full_attention": mask}, positions, batch, rotary)
        return list(hidden.cpu().split(1, dim=0))

    def prefill(self, hidden_all: torch.Tensor) -> torch.Tensor:
        """One pass over a whole sequence with a fresh cache, as a verifier recomputes a hop."""
        return self.forward(hidden_all, self.new_cache(), 0)

    def _layers(self, hidden, masks: dict, positions, cache, rotary) -> torch.Tensor:
        """The span's decoder layers in order, each with the mask of its layer type."""
        for offset, layer in enumerate(self.layers):
            hidden = self._call(
                layer,
                hidden,
                masks[self._layer_type(self.start + offset)],
                positions,
                cache,
                rotary,
            )
        return hidden

    def _rotary(self, hidden: torch.Tensor, positions: torch.Tensor):
        return None if self.rotary is None else self.rotary(hidden, positions)

    def _layer_type(self, index: int) -> str:
        return self._layer_types[index] if self._layer_types else "full_attention"

    def _masks(self, hidden: torch.Tensor, cache, positions: torch.Tensor) -> dict:
        from transformers.masking_utils import (
            create_causal_mask,
            create_sliding_window_causal_mask,
        )

        builders = {
            "full_attention": create_causal_mask,
            "sliding_attention": create_sliding_window_causal_mask,
        }
        if hidden.shape[1] == 1 and self._mask_types == ["full_attention"]:
            # One new token may attend to every cached position: the causal mask is empty, and
            # building it on each decode step is pure overhead.
            return {"full_attention": None}
        masks = {}
        for kind in self._mask_types:
            if kind not in builders:
                raise ModelError(f"layer type {kind!r} is not supported", code="UNSUPPORTED_MODEL")
            first = next(i for i in range(self.start, self.end) if self._layer_type(i) == kind)
            masks[kind] = builders[kind](
                config=self.config,
                inputs_embeds=hidden,
                attention_mask=None,
                cache=cache,
                position_ids=positions,
                layer_idx=first,
            )
        return masks


def layer_call(layer: nn.Module):
    """How to call one family's decoder layer: the library's layers agree on what they need
    but not on every keyword (the cache is ``cache`` or ``layer_past``; Falcon's layer takes
    an ``alibi`` argument) nor on what they return (a tensor, or a tuple led by one)."""
    accepted = inspect.signature(layer.forward).parameters
    cache_name = "cache" if "cache" in accepted else "layer_past"
    if cache_name not in accepted:
        raise ModelError(
            f"{type(layer).__name__} takes no KV cache argument; the span runner cannot drive it",
            code="UNSUPPORTED_MODEL",
        )
    fixed = {"alibi": None} if "alibi" in accepted else {}

    def call(layer, hidden, mask, positions, cache, rotary) -> torch.Tensor:
        extra = {} if rotary is None else {"position_embeddings": rotary}
        out = layer(
            hidden,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **{cache_name: cache},
            **fixed,
            **extra,
        )
        return out[0] if isinstance(out, tuple) else out

    return call


def _check_span(manifest: Manifest, start: int, end: int) -> None:
    if not (0 <= start < end <= manifest.num_layers):
        raise ModelError(
            f"span {start}:{end} is not within the model's {manifest.num_layers} layers",
            code="BAD_SPAN",
        )
