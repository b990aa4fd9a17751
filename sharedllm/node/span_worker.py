"""The node's computation: hidden-state bytes in, hidden-state bytes out, through its span.

All torch work runs on one worker thread so the event loop keeps answering other sessions
(and rejecting bad requests) while a step computes, and so two sessions never fight over the
CPU's cores inside one forward pass.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from sharedllm.model.span import SpanRunner
from sharedllm.model.store import Manifest, ModelStore


class SpanWorker:
    def __init__(
        self,
        store: ModelStore,
        manifest: Manifest,
        start: int,
        end: int,
        wrap_runner: Callable[[SpanRunner], Any] | None = None,
    ) -> None:
        self.manifest = manifest
        self.start, self.end = start, end
        self.hidden_size = manifest.hidden_size
        runner = SpanRunner(store, manifest, start, end)
        # A test hands in a wrapper (sharedllm.testing.cheats); a node as run is honest.
        self.runner = wrap_runner(runner) if wrap_runner is not None else runner
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="span")
        self.ms_per_token = 0.0  # moving average of one-token steps, shown at /info

    def new_cache(self) -> Any:
        return self.runner.new_cache()

    def kv_bytes_per_token(self) -> int:
        """Cache bytes one position costs across the span (keys and values, float32)."""
        cfg = self.manifest.config
        heads = int(cfg.get("num_attention_heads", 1))
        kv_heads = int(cfg.get("num_key_value_heads", heads))
        head_dim = int(cfg.get("head_dim") or self.hidden_size // heads)
        return 2 * kv_heads * head_dim * 4 * (self.end - self.start)

    async def forward(self, cache: Any, data: bytes, length: int, start_pos: int) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, self._forward, cache, data, length, start_pos
        )

    async def forward_steps(self, cache: Any, data: bytes, lengths: list[int]) -> bytes:
        """Replays several steps in their original sizes, so the rebuilt cache (and every
        output) is bit-for-bit what the original steps produced; one big prefill would
        round differently. Each step is its own job on the worker, so that a long replay
        (a failover of a long answer, or a stranger's thousands of one-position steps)
        interleaves with other sessions' steps instead of holding the worker throughout."""
        loop = asyncio.get_running_loop()
        width = self.hidden_size * 4
        parts, offset, pos = [], 0, 0
        for n in lengths:
            chunk = data[offset : offset + n * width]
            parts.append(
                await loop.run_in_executor(self._pool, self._forward, cache, chunk, n, pos)
            )
            offset += n * width
            pos += n
        return b"".join(parts)

    def warm_up(self) -> None:
        """One throw-away step: the first forward pays one-off costs we do not want to bill
        to the first client, and it gives /info a measured speed from the start."""
        cache = self.new_cache()
        zeros = bytes(self.hidden_size * 4)
        self._forward(cache, zeros, 1, 0)
        self._forward(cache, zeros, 1, 1)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _forward(self, cache: Any, data: bytes, length: int, start_pos: int) -> bytes:
        began = time.perf_counter()
        array = np.frombuffer(data, dtype="<f4").reshape(1, length, self.hidden_size)
        hidden = torch.from_numpy(array.copy())
        out = self.runner.forward(hidden, cache, start_pos)
        result = out.detach().to(torch.float32).contiguous().numpy().tobytes()
        if length == 1:
            ms = (time.perf_counter() - began) * 1000.0
            self.ms_per_token = ms if self.ms_per_token == 0 else 0.8 * self.ms_per_token + 0.2 * ms
        return result
