"""The work behind the session endpoints: run, replay, look up and wait for steps.

Handlers parse HTTP into frames and messages and call these; nothing here knows HTTP.
"""

from __future__ import annotations

import asyncio

from sharedllm.errors import (
    FrameError,
    PeerError,
    SessionLimit,
    StepOutOfOrder,
)
from sharedllm.node.sessions import Session, StepRecord
from sharedllm.node.span_worker import SpanWorker
from sharedllm.protocol.frames import TensorFrame
from sharedllm.protocol.session_msgs import (
    MAX_STEP_POSITIONS,
    parse_replay_meta,
    parse_step_meta,
)


def check_hidden(frame: TensorFrame, hidden_size: int) -> int:
    """The number of positions in a hidden-state frame of shape [1, T, hidden]."""
    if frame.dtype != "float32":
        raise FrameError(
            f"hidden states must be float32, got {frame.dtype}", code="BAD_DTYPE", field="dtype"
        )
    if len(frame.shape) != 3 or frame.shape[0] != 1 or frame.shape[2] != hidden_size:
        raise FrameError(
            f"hidden states must have shape [1, T, {hidden_size}], got {list(frame.shape)}",
            code="BAD_SHAPE",
            field="shape",
        )
    return frame.shape[1]


async def run_step(worker: SpanWorker, session: Session, frame: TensorFrame) -> StepRecord:
    """Compute one step, or return the saved result when the same step is sent again.

    A resend happens after a failover: the client retries the step that failed, and hops
    before the failure already computed it. Recomputing would advance the cache twice, so an
    identical resend is answered from history and a different one is refused.
    """
    length = check_hidden(frame, worker.hidden_size)
    if length > MAX_STEP_POSITIONS:
        raise FrameError(
            f"a step carries at most {MAX_STEP_POSITIONS} positions, got {length}: "
            "send a long prompt as several steps",
            code="STEP_TOO_LONG",
            field="shape",
        )
    step, start_pos = parse_step_meta(frame.meta)
    async with session.turn():
        if step < len(session.steps):
            done = session.steps[step]
            if done.input == frame.data and done.start_pos == start_pos:
                return done
            raise StepOutOfOrder(f"step {step} was already run with a different input", step=step)
        if step > len(session.steps):
            raise StepOutOfOrder(
                f"expected step {len(session.steps)}, got {step}",
                expected=len(session.steps),
                step=step,
            )
        if start_pos != session.position:
            raise StepOutOfOrder(
                f"step {step} must start at position {session.position}, not {start_pos}",
                field="meta.start_pos",
            )
        _check_room(session, length)
        session.touch()
        output = await worker.forward(session.cache, frame.data, length, start_pos, session.runner)
        record = StepRecord(start_pos, length, frame.data, output)
        session.steps.append(record)
        session.touch()
    async with session.changed:
        session.changed.notify_all()
    return record


async def replay(worker: SpanWorker, session: Session, frame: TensorFrame) -> bytes:
    """Rebuild a fresh session's cache from a previous hop's saved outputs."""
    total = check_hidden(frame, worker.hidden_size)
    lengths = parse_replay_meta(frame.meta, total)
    async with session.turn():
        if session.steps:
            raise StepOutOfOrder("replay needs a session with no steps yet")
        _check_room(session, total)
        session.touch()
        output = await worker.forward_steps(session.cache, frame.data, lengths, session.runner)
        session.touch()
        width = worker.hidden_size * 4
        offset, pos = 0, 0
        for n in lengths:
            end = offset + n * width
            session.steps.append(StepRecord(pos, n, frame.data[offset:end], output[offset:end]))
            offset, pos = end, pos + n
    async with session.changed:
        session.changed.notify_all()
    return output


def history(session: Session, which: str, upto: int) -> tuple[bytes, list[int]]:
    """The inputs or outputs of steps ``0..upto-1``, concatenated, and their lengths."""
    if not 1 <= upto <= len(session.steps):
        raise StepOutOfOrder(f"upto must be in [1, {len(session.steps)}], got {upto}", field="upto")
    records = session.steps[:upto]
    parts = [r.input if which == "inputs" else r.output for r in records]
    return b"".join(parts), [r.length for r in records]


async def wait_output(session: Session, step: int, timeout: float) -> StepRecord:
    """Long-poll: answer as soon as ``step`` has run here, so the last hop's result reaches
    the client without travelling back through the route."""
    async with session.changed:
        try:
            await asyncio.wait_for(
                session.changed.wait_for(lambda: session.closed or len(session.steps) > step),
                timeout,
            )
        except TimeoutError:
            raise PeerError(
                f"step {step} did not arrive within {timeout:.0f} s", code="STEP_TIMEOUT"
            ) from None
    if session.closed:
        raise session.gone()
    return session.steps[step]


def _check_room(session: Session, length: int) -> None:
    if session.position + length > session.request.max_length:
        raise SessionLimit(
            f"session would exceed its max_length of {session.request.max_length}",
            field="max_length",
        )
