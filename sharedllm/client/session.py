"""An inference session over a route of nodes.

Each step the client posts the new hidden states to the first hop, which pushes its output
to the next hop and so on; meanwhile the client waits on a long-poll at the last hop, so the
result arrives (hops + 1) link delays after it was sent, not twice that. When a hop fails,
``failover`` replaces it and the step is sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any

import numpy as np

from sharedllm.client.failover import OPEN_TIMEOUT_S, Failover, failed_url
from sharedllm.client.payer import PaidJob, Payer
from sharedllm.client.planner import RoutePlanner
from sharedllm.errors import (
    PeerError,
    RouteError,
    SessionLimit,
    SessionReclaimed,
    SessionUnknown,
    SharedLLMError,
)
from sharedllm.peers.stall_watch import watched
from sharedllm.protocol import session_keys, step_deadline
from sharedllm.protocol.amendment import Amendment
from sharedllm.protocol.frames import TensorFrame
from sharedllm.protocol.session_keys import hop_key, key_digest
from sharedllm.protocol.session_msgs import MAX_STEP_POSITIONS, Hop, OpenSession

log = logging.getLogger("sharedllm.client")
FULL_WAITS = 3  # how many times a client waits for a full network before giving up
MAX_FULL_WAIT_S = 10.0


class InferenceSession(Failover):
    """``async with InferenceSession(...) as s: out = await s.step(hidden)``."""

    def __init__(
        self,
        planner: RoutePlanner,
        model_id: str,
        num_layers: int,
        hidden_size: int,
        *,
        max_length: int = 2048,
        step_timeout_s: float = 30.0,
        max_repairs: int = 8,
        job: dict[str, Any] | None = None,
        signature: str | None = None,
        payer: Payer | None = None,
    ) -> None:
        self.planner, self.peers = planner, planner.peers
        self.model_id, self.num_layers, self.hidden_size = model_id, num_layers, hidden_size
        self.max_length, self.step_timeout_s, self.max_repairs = (
            max_length,
            step_timeout_s,
            max_repairs,
        )
        self.job, self.signature = job, signature
        self.payer = payer
        self.paid: PaidJob | None = None  # the job paying for the current route
        self.session_id = secrets.token_hex(16)
        self._secret = secrets.token_bytes(32)  # per-hop session keys derive from it
        self._keys: dict[str, str] = {}  # hop URL -> that hop's key for this session
        self.route: list[Hop] = []
        self.failovers: list[tuple[str, list[Hop]]] = []  # (failed url, new route) per repair
        self._excluded: set[str] = set()
        self.amendments: tuple[Amendment, ...] = ()  # the current job's, as the hops hold them
        self._inputs: list[bytes] = []
        self._lengths: list[int] = []
        self._acks: list[asyncio.Task] = []
        self._background: set[asyncio.Task] = set()

    async def __aenter__(self) -> InferenceSession:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def position(self) -> int:
        return sum(self._lengths)

    async def open(self) -> None:
        refused: dict[str, BaseException] = {}  # why the nodes left out so far were left out
        waits = 0
        for _ in range(self.max_repairs + 1 + FULL_WAITS):
            try:
                route = await self.planner.plan(self.model_id, 0, self.num_layers, self._excluded)
            except RouteError as exc:
                if not refused:
                    raise
                full = [e for e in refused.values() if isinstance(e, SessionLimit)]
                if len(full) == len(refused) and waits < FULL_WAITS:
                    # Every node that could serve is full: a slot frees up when a session
                    # ends, so wait as long as the nodes say (bounded) and ask them again.
                    delay = min(MAX_FULL_WAIT_S, max(_retry_after(e) for e in full))
                    log.info("every candidate node is full; trying again in %.0f s", delay)
                    await asyncio.sleep(delay)
                    waits += 1
                    self._excluded -= set(refused)
                    refused.clear()
                    continue
                why = "; ".join(f"{url}: {err}" for url, err in refused.items())
                raise RouteError(f"{exc.message}; refused: {why}", **exc.details) from None
            if self.payer is not None:
                self.paid = await self.payer.job_for(self.model_id, route, self.max_length)
                self.job, self.signature = self.paid.signed.wire()
                self.amendments = ()
            results = await asyncio.gather(
                *(self._open_hop(route, i) for i in range(len(route))), return_exceptions=True
            )
            failed = [r for r in results if isinstance(r, BaseException)]
            if not failed:
                self.route = route
                return
            opened = []
            for hop, result in zip(route, results, strict=True):
                if isinstance(result, BaseException):
                    self._excluded.add(hop.url)
                    refused[hop.url] = result
                else:
                    opened.append(hop.url)
            await asyncio.gather(*(self._forget(url) for url in opened))
            if not all(isinstance(r, SharedLLMError) for r in failed):
                raise failed[0]
        raise failed[0]

    async def step(self, hidden: np.ndarray) -> np.ndarray:
        """Run new positions [1, T, H] through the whole route; returns the last hop's output.

        A long prompt goes as steps of at most ``MAX_STEP_POSITIONS`` positions, so that no
        step holds a node's worker, or waits on a timeout, for longer than a short one."""
        array = np.ascontiguousarray(hidden, dtype=np.float32)
        if array.ndim != 3 or array.shape[0] != 1 or array.shape[2] != self.hidden_size:
            raise ValueError(f"hidden must be [1, T, {self.hidden_size}], got {array.shape}")
        self._reap_acks()
        outputs = [await self._step(chunk.tobytes()) for chunk in _chunks(array[0])]
        return np.concatenate(outputs, axis=1)

    async def _step(self, data: bytes) -> np.ndarray:
        length = len(data) // (4 * self.hidden_size)
        for attempt in range(self.max_repairs + 1):
            index = len(self._inputs)
            frame = TensorFrame(
                "float32", (1, length, self.hidden_size), data,
                {
                    "step": index,
                    "start_pos": self.position,
                    "budget_ms": step_deadline.budget_ms(self.step_timeout_s),
                },
            )  # fmt: skip
            try:
                out = await self._try_step(index, frame)
                break
            except SharedLLMError as exc:
                failed = failed_url(exc)
                if failed is None or attempt == self.max_repairs:
                    raise
                log.warning("hop %s failed at step %d: %s", failed, index, exc)
                if self.payer is None:
                    # A reclaimed session's node is healthy: it may serve the new one.
                    await self._repair(failed, index, exclude=not _reclaimed(exc))
                elif await self._amend_paid(failed, index, length):
                    pass
                else:
                    for chunk in _chunks(await self._restart_paid(failed)):
                        await self._step(chunk.tobytes())
        self._inputs.append(data)
        self._lengths.append(length)
        result = out.to_numpy().reshape(out.shape)
        return result[:, -length:, :].copy()

    async def close(self) -> None:
        for task in self._acks:
            task.cancel()
        await asyncio.gather(*(self._forget(h.url) for h in self.route))
        self._settle()

    def _settle(self) -> None:
        """Record what the current job's route served (closing the sessions settles it)."""
        if self.payer is not None and self.paid is not None:
            self.payer.served(self.paid, self.position)

    async def _try_step(self, index: int, frame: TensorFrame) -> TensorFrame:
        first, last = self.route[0].url, self.route[-1].url
        # The push carries the step's budget down the route (step_deadline): the hop before a
        # stalled one gives up first and names it, and the push's outcome, which names the
        # failed hop, arrives before the long-poll gives up. Both calls are watched, so a hop
        # that froze is named within seconds (stall_watch).
        poll = asyncio.create_task(
            self._with_url(
                last,
                watched(
                    self.peers.get_frame(
                        f"{last}/sessions/{self.session_id}/outputs/{index}",
                        self.step_timeout_s + step_deadline.HOP_MARGIN_S,
                        self._key_header(last),
                    ),
                    self.peers.answers,
                    last,
                ),
            )
        )
        push = asyncio.create_task(
            self._with_url(
                first,
                watched(
                    self.peers.post_frame(
                        f"{first}/sessions/{self.session_id}/steps",
                        frame,
                        step_deadline.wait_for(self.step_timeout_s),
                    ),
                    self.peers.answers,
                    first,
                ),
            )
        )
        await asyncio.wait({poll, push}, return_when=asyncio.FIRST_COMPLETED)
        if poll.done() and poll.exception() is None:
            self._acks.append(push)
            return self._received(_checked_output(poll.result(), index, frame.shape), index)
        if push.done() and push.exception() is not None:
            _drop(poll)
            raise push.exception()
        # The long-poll failed first, or the push was acknowledged: the push's outcome tells
        # which hop broke (a push error names it); if every hop acknowledged, the last did.
        await asyncio.wait({push})
        if push.exception() is not None:
            _drop(poll)
            raise push.exception()
        return self._received(_checked_output(await poll, index, frame.shape), index)

    def _received(self, frame: TensorFrame, index: int) -> TensorFrame:
        """Keep the step's receipts (one per hop) for the job being paid."""
        if self.paid is not None:
            self.paid.receipts[index] = list(frame.meta.get("receipts", []))
        return frame

    def _spawn(self, call: Any) -> None:
        """Run a best-effort call in the background, kept until it is done."""
        task = asyncio.create_task(call)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _open_hop(self, route: list[Hop], index: int) -> None:
        url = route[index].url
        key = hop_key(self._secret, self.session_id, index, url)
        self._keys[url] = key
        request = OpenSession(
            session_id=self.session_id,
            model_id=self.model_id,
            route=tuple(route),
            hop_index=index,
            max_length=self.max_length,
            job=self.job,
            signature=self.signature,
            control=key_digest(key),
            amendments=self.amendments,
        )
        await self._with_url(
            url,
            self.peers.post_json(f"{url}/sessions", request.to_json(), OPEN_TIMEOUT_S),
            any_error=True,
        )

    async def _forget(self, url: str) -> None:
        """Best effort: close our session on a node we no longer use."""
        with contextlib.suppress(SharedLLMError):
            await self.peers.delete(f"{url}/sessions/{self.session_id}", 2.0, self._key_header(url))

    def _key_header(self, url: str) -> dict[str, str]:
        key = self._keys.get(url)
        return {session_keys.HEADER: key} if key else {}

    @staticmethod
    async def _with_url(url: str, call: Any, *, any_error: bool = False) -> Any:
        """Blame the node we called for its failure, unless the error names another node.

        During a step only failures of the node itself count (a refused frame is our bug, not
        the node's); while rebuilding a hop any refusal means "use another node".
        """
        try:
            return await call
        except SharedLLMError as exc:
            if any_error or isinstance(exc, (PeerError, SessionUnknown)):
                exc.details.setdefault("failed_url", url)
            raise

    def _reap_acks(self) -> None:
        """Acks of steps whose output already arrived only matter as log lines."""
        for task in [t for t in self._acks if t.done()]:
            self._acks.remove(task)
            if not task.cancelled() and task.exception() is not None:
                log.warning("a hop's late answer to an earlier step failed: %s", task.exception())


def _checked_output(frame: TensorFrame, index: int, shape: tuple[int, ...]) -> TensorFrame:
    if frame.dtype != "float32" or frame.shape != tuple(shape) or frame.meta.get("step") != index:
        raise PeerError(
            f"last hop answered step {frame.meta.get('step')} with shape {list(frame.shape)}",
        )
    return frame


def _reclaimed(exc: SharedLLMError) -> bool:
    """A free node closed the session to make room for another client (``SESSION_RECLAIMED``),
    answered by the hop itself or passed on by the hop before it."""
    return SessionReclaimed.code in (exc.code, exc.details.get("cause"))


def _retry_after(exc: SessionLimit) -> float:
    value = exc.details.get("retry_after_s")
    return float(value) if isinstance(value, int | float) and value > 0 else 1.0


def _chunks(rows: np.ndarray) -> list[np.ndarray]:
    """[T, H] rows as [1, <=MAX_STEP_POSITIONS, H] steps, in order."""
    return [
        rows[None, i : i + MAX_STEP_POSITIONS] for i in range(0, rows.shape[0], MAX_STEP_POSITIONS)
    ]


def _drop(task: asyncio.Task) -> None:
    """Cancel a task whose outcome no longer matters, without an unretrieved-exception warning."""
    task.cancel()
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
