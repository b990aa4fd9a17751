"""The node's computation: hidden-state bytes in, hidden-state bytes out, through its span.

All torch work runs on one worker thread so the event loop keeps answering other sessions
(and rejecting bad requests) while a step computes, and so two sessions never fight over the
CPU's cores inside one forward pass. One-token steps of concurrent sessions that wait for
the worker together run as one batch (``node/batching.py``): a decode step reads every
weight of the span once whatever the batch, so a batch of eight costs little more than one
step. Longer steps (prompts, replays) run alone: they are already a matrix of positions.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from sharedllm.errors import SessionError
from sharedllm.model.device import hardware_class
from sharedllm.model.span import SpanRunner
from sharedllm.model.store import Manifest, ModelStore
from sharedllm.node.batching import (
    DEFAULT_MAX_POSITIONS,
    DEFAULT_MAX_ROWS,
    DEFAULT_WAIT_MS,
    BatchQueue,
    PendingStep,
)

# ``tokens_per_s`` is the fastest of the last SPEED_WINDOW one-token steps run alone; a
# start measures SPEED_SAMPLES of them (as does ``measure_speed``, when the node is idle).
SPEED_WINDOW = 32
SPEED_SAMPLES = 5


class SpanWorker:
    def __init__(
        self,
        store: ModelStore,
        manifest: Manifest,
        start: int,
        end: int,
        wrap_runner: Callable[[SpanRunner], Any] | None = None,
        *,
        max_batch: int = DEFAULT_MAX_ROWS,
        batch_positions: int = DEFAULT_MAX_POSITIONS,
        batch_wait_ms: float = DEFAULT_WAIT_MS,
        device: torch.device | None = None,
    ) -> None:
        self.manifest = manifest
        self.start, self.end = start, end
        self.hidden_size = manifest.hidden_size
        runner = SpanRunner(store, manifest, start, end, device)
        self.hardware = hardware_class(runner.device)  # shown at /info
        # A test hands in a wrapper (sharedllm.testing.cheats); a node as run is honest.
        self.runner = wrap_runner(runner) if wrap_runner is not None else runner
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="span")
        self.ms_per_token = 0.0  # moving average of one-token steps, shown at /info
        self.batch_rows = 1.0  # moving average of the rows in a one-token batch
        self.batched_steps = 0  # one-token steps that ran in a batch of two or more
        self._alone_ms: deque[float] = deque(maxlen=SPEED_WINDOW)  # whole-span ms, one row
        self._batches = BatchQueue(max_batch, batch_positions, batch_wait_ms / 1000.0)
        self._waiting = 0  # steps handed to the worker and not yet answered (event loop only)
        self._parts: dict[tuple[int, int], Any] = {(start, end): self.runner}

    @property
    def tokens_per_s(self) -> float:
        """One stream's tokens per second through the whole span: from the fastest recent
        one-token step run alone, since a machine busy with other work only ever slows a
        step down. It is what the network weighs this node by when nodes decide where to
        move (``placement/rebalance.py``); 0 before any step."""
        return 1000.0 / min(self._alone_ms) if self._alone_ms else 0.0

    @property
    def max_batch(self) -> int:
        return self._batches.max_rows

    @property
    def queued_steps(self) -> int:
        """Steps waiting for the worker or running on it, every session's together."""
        return self._waiting

    def part(self, start: int, end: int) -> Any:
        """The runner for layers ``[start, end)`` of the span (a route may use any contiguous
        part of it); its sessions' caches come from ``part(..).new_cache()``."""
        key = (start, end)
        if key not in self._parts:
            self._parts[key] = self.runner.part(start, end)
        return self._parts[key]

    def new_cache(self) -> Any:
        return self.runner.new_cache()

    def forget(self, cache: Any) -> None:
        """A session closed: batches stop waiting for its steps."""
        self._batches.forget(cache)

    def kv_bytes_per_token(self, layers: int | None = None) -> int:
        """Cache bytes one position costs across ``layers`` of the span (all of them by
        default; keys and values, float32)."""
        cfg = self.manifest.config
        heads = int(cfg.get("num_attention_heads", 1))
        kv_heads = int(cfg.get("num_key_value_heads", heads))
        head_dim = int(cfg.get("head_dim") or self.hidden_size // heads)
        return 2 * kv_heads * head_dim * 4 * (layers or self.end - self.start)

    async def forward(
        self, cache: Any, data: bytes, length: int, start_pos: int, runner: Any = None
    ) -> bytes:
        """One step through ``runner`` (a ``part``; the whole span by default)."""
        runner = runner or self.runner
        loop = asyncio.get_running_loop()
        self._count(+1)
        try:
            if length != 1 or self.max_batch == 1 or not runner.can_batch(cache):
                return await loop.run_in_executor(
                    self._pool, self._forward, cache, data, length, start_pos, runner
                )
            future: asyncio.Future[bytes] = loop.create_future()

            def settle(output: bytes | None, error: BaseException | None) -> None:
                loop.call_soon_threadsafe(_resolve, future, output, error)

            if self._batches.put(PendingStep(cache, data, start_pos, settle, runner=runner)):
                self._pool.submit(self._run_batch)
            return await future
        finally:
            self._count(-1)

    async def forward_steps(
        self, cache: Any, data: bytes, lengths: list[int], runner: Any = None
    ) -> bytes:
        """Replays several steps in their original sizes, so the rebuilt cache (and every
        output) is bit-for-bit what the steps produced on a node serving the session alone
        (one big prefill would round differently; a step first run in a batch rounds within
        the same tolerance a thread count does). Each step is its own job on the worker, so
        that a long replay (a failover of a long answer, or a stranger's thousands of
        one-position steps) interleaves with other sessions' steps instead of holding the
        worker throughout."""
        runner = runner or self.runner
        loop = asyncio.get_running_loop()
        width = self.hidden_size * 4
        parts, offset, pos = [], 0, 0
        for n in lengths:
            chunk = data[offset : offset + n * width]
            self._count(+1)
            try:
                parts.append(
                    await loop.run_in_executor(
                        self._pool, self._forward, cache, chunk, n, pos, runner
                    )
                )
            finally:
                self._count(-1)
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
        if self.runner.can_batch(cache):
            other = self.new_cache()
            self._forward(other, zeros, 1, 0)
            self.runner.forward_batch([self._hidden(zeros, 1)] * 2, [cache, other])
        self._alone_ms.clear()  # the first steps paid the one-off costs
        self._measure(SPEED_SAMPLES)

    async def measure_speed(self) -> None:
        """A few throw-away one-token steps on the worker thread, so that ``tokens_per_s``
        stays current on a node no client uses (the caller runs it only when idle)."""
        await asyncio.get_running_loop().run_in_executor(self._pool, self._measure, SPEED_SAMPLES)

    def _measure(self, steps: int) -> None:
        cache = self.new_cache()
        zeros = bytes(self.hidden_size * 4)
        for pos in range(steps):
            self._forward(cache, zeros, 1, pos)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _count(self, delta: int) -> None:
        self._waiting += delta

    def _hidden(self, data: bytes, length: int) -> torch.Tensor:
        array = np.frombuffer(data, dtype="<f4").reshape(1, length, self.hidden_size)
        return torch.from_numpy(array.copy())

    def _forward(
        self, cache: Any, data: bytes, length: int, start_pos: int, runner: Any = None
    ) -> bytes:
        began = time.perf_counter()
        runner = runner or self.runner
        out = runner.forward(self._hidden(data, length), cache, start_pos)
        result = _to_bytes(out)
        if length == 1:
            self._timed(began, 1, runner)
        return result

    def _run_batch(self) -> None:
        """On the worker thread: take the waiting one-token steps and run them together."""
        batch, more = self._batches.take()
        if more:
            try:
                self._pool.submit(self._run_batch)
            except RuntimeError:  # the node is stopping: nothing will run the rest
                for step in self._batches.drain():
                    step.settle(None, SessionError("the node is stopping", code="NODE_STOPPING"))
        # Steps through the same layers run together; a lone step runs alone, and so does
        # one that does not line up with its cache (it fails with the runner's error, on its
        # own request only).
        groups: dict[int, list[PendingStep]] = {}
        for step in batch:
            if step.runner.cached_length(step.cache) == step.start_pos:
                groups.setdefault(id(step.runner), []).append(step)
        together = [group for group in groups.values() if len(group) >= 2]
        for step in batch:
            if not any(step is s for group in together for s in group):
                self._run_alone(step)
        for group in together:
            self._run_together(group)

    def _run_alone(self, step: PendingStep) -> None:
        try:
            step.settle(self._forward(step.cache, step.data, 1, step.start_pos, step.runner), None)
        except Exception as exc:  # noqa: BLE001 - handed to the step's own request
            step.settle(None, exc)

    def _run_together(self, steps: list[PendingStep]) -> None:
        began = time.perf_counter()
        try:
            outputs = steps[0].runner.forward_batch(
                [self._hidden(step.data, 1) for step in steps], [step.cache for step in steps]
            )
        except Exception as exc:  # noqa: BLE001 - handed to every request in the batch
            for step in steps:
                step.settle(None, exc)
            return
        self._timed(began, len(steps), steps[0].runner)
        self.batched_steps += len(steps)
        for step, out in zip(steps, outputs, strict=True):
            step.settle(_to_bytes(out), None)

    def _timed(self, began: float, rows: int, runner: Any) -> None:
        """Fold one step's time into ``ms_per_token``, which is for the whole span: a step
        over a part counts in proportion to the layers it ran."""
        ms = (time.perf_counter() - began) * 1000.0
        ms *= (self.end - self.start) / (runner.end - runner.start)
        self.ms_per_token = ms if self.ms_per_token == 0 else 0.8 * self.ms_per_token + 0.2 * ms
        if rows == 1:
            self._alone_ms.append(ms)
        self.batch_rows = 0.8 * self.batch_rows + 0.2 * rows


def _to_bytes(out: torch.Tensor) -> bytes:
    return out.detach().to(torch.float32).contiguous().numpy().tobytes()


def _resolve(future: asyncio.Future[bytes], output: bytes | None, error: BaseException | None):
    if future.done():  # the request went away while its step waited
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert output is not None
        future.set_result(output)
