"""KV caches for a span: one per session, and a batch view over several sessions' caches.

Both are layers of the library's own ``DynamicCache``, so the decoder layers, the masks and
sdpa attention use them exactly as they use the stock cache:

- ``GrowingLayer`` keeps a session's keys and values in a buffer with room to spare and hands
  the attention a view of the filled part. The stock layer concatenates on every step, which
  copies the whole cache once per token; here a step writes only its own positions, and the
  buffer is copied only when it doubles.
- ``BatchLayer`` stands for one span layer of several sessions at once. When the decoder layer
  updates it with the batch's new keys and values, it writes each row's into that session's
  own cache and hands the attention one tensor of every row's cache, left-padded to the
  longest; a 2-D padding mask keeps each row to its own positions. That gather is the one
  copy batching costs, and a node caps it (``node/batching.py``, ``--batch-positions``).
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

MIN_ROOM = 64  # positions a fresh buffer holds before it first grows


class GrowingLayer(DynamicLayer):
    """A ``DynamicLayer`` whose buffer grows by doubling instead of by one step at a time."""

    def __init__(self) -> None:
        super().__init__()
        self._key_room: torch.Tensor | None = None
        self._value_room: torch.Tensor | None = None
        self._filled = 0

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self._filled + key_states.shape[-2]
        if self._key_room is None or end > self._key_room.shape[-2]:
            self._grow(key_states, value_states, end)
        assert self._key_room is not None and self._value_room is not None
        self._key_room[..., self._filled : end, :] = key_states
        self._value_room[..., self._filled : end, :] = value_states
        self._filled = end
        self.keys = self._key_room[..., :end, :]
        self.values = self._value_room[..., :end, :]
        return self.keys, self.values

    def _grow(self, key_states: torch.Tensor, value_states: torch.Tensor, end: int) -> None:
        room = max(MIN_ROOM, end, 2 * (0 if self._key_room is None else self._key_room.shape[-2]))
        keys = key_states.new_empty((*key_states.shape[:-2], room, key_states.shape[-1]))
        values = value_states.new_empty((*value_states.shape[:-2], room, value_states.shape[-1]))
        if self._filled:
            keys[..., : self._filled, :] = self.keys
            values[..., : self._filled, :] = self.values
        self._key_room, self._value_room = keys, values


def session_cache(config, start: int, end: int) -> DynamicCache:
    """A fresh cache for one session: the library's layout, with growing layers for the
    span's full-attention layers (sliding-window layers keep the library's own)."""
    cache = DynamicCache(config=config)
    for index in range(start, end):
        if type(cache.layers[index]) is DynamicLayer:
            cache.layers[index] = GrowingLayer()
    return cache


def can_batch(cache: DynamicCache, start: int, end: int) -> bool:
    """Whether a session's cache can join a batch: every span layer a growing one."""
    return all(isinstance(cache.layers[i], GrowingLayer) for i in range(start, end))


class Workspace:
    """One reusable buffer for the gathered keys and values of a batch.

    A batch's gathered tensors live only while one layer attends, so every layer of the span
    and every batch share one buffer; it grows by doubling and is never freed. A fresh large
    tensor per layer would cost more than the copy into it: the allocator hands out new
    pages, and touching them faults each one in. Padded positions keep whatever finite
    values an earlier batch left there; the mask hides them.
    """

    def __init__(self) -> None:
        self._flat = torch.zeros(0)

    def pair(self, size: tuple[int, ...], like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        count = 1
        for n in size:
            count *= n
        if (
            self._flat.numel() < 2 * count
            or self._flat.dtype != like.dtype
            or self._flat.device != like.device
        ):
            room = max(2 * count, 2 * self._flat.numel())
            self._flat = torch.zeros(room, dtype=like.dtype, device=like.device)
        return self._flat[:count].view(size), self._flat[count : 2 * count].view(size)


class BatchLayer(DynamicLayer):
    """One span layer of several sessions' caches, seen as one left-padded batch."""

    def __init__(self, rows: list[GrowingLayer], longest: int, workspace: Workspace) -> None:
        super().__init__()
        self.rows, self.longest, self.workspace = rows, longest, workspace

    def get_seq_length(self) -> int:
        return self.longest

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.longest + query_length, 0

    def update(self, key_states, value_states, *args, **kwargs):
        batch, heads, new, dim = key_states.shape
        keys, values = self.workspace.pair((batch, heads, self.longest + new, dim), key_states)
        for i, row in enumerate(self.rows):
            row_keys, row_values = row.update(key_states[i : i + 1], value_states[i : i + 1])
            first = self.longest + new - row_keys.shape[-2]
            keys[i, :, first:] = row_keys[0]
            values[i, :, first:] = row_values[0]
        self.is_initialized = True
        return keys, values


def batch_cache(
    caches: list[DynamicCache], start: int, end: int, longest: int, workspace: Workspace
) -> DynamicCache:
    """A cache whose span layers are ``BatchLayer`` views of ``caches``' layers."""
    batch = DynamicCache()
    batch.layers = [DynamicLayer() for _ in range(end)]
    for index in range(start, end):
        batch.layers[index] = BatchLayer([c.layers[index] for c in caches], longest, workspace)
    return batch


def padding_mask(
    lengths: list[int], longest: int, new: int, device: torch.device | None = None
) -> torch.Tensor:
    """The 2-D mask of a left-padded batch: 1 on each row's cached and new positions."""
    mask = torch.zeros((len(lengths), longest + new), dtype=torch.long, device=device)
    for i, length in enumerate(lengths):
        mask[i, longest - length :] = 1
    return mask
