"""Which waiting one-token steps the span worker runs together, and who waits for whom."""

from __future__ import annotations

import threading
import time

import pytest

from sharedllm.node.batching import BatchQueue, PendingStep


class Cache:
    """Stands for a session's cache: the queue only tells sessions apart by identity."""


def step(cache: Cache, start_pos: int = 10) -> PendingStep:
    return PendingStep(cache, b"", start_pos, lambda out, err: None)


def decoding(queue: BatchQueue, *caches: Cache) -> None:
    """Make ``caches`` sessions that decoded here just now (one batch of their steps)."""
    for cache in caches:
        queue.put(step(cache))
    assert len(queue.take()[0]) == len(caches)


def test_a_lone_session_waits_for_nobody():
    queue = BatchQueue(wait_s=30.0)
    mine = Cache()
    for _ in range(3):  # it becomes a recent decoder of its own, and still never waits
        assert queue.put(step(mine))
        began = time.monotonic()
        batch, more = queue.take()
        assert [s.cache for s in batch] == [mine] and not more
        assert time.monotonic() - began < 5.0  # far below the 30 s it would wait for others


def test_waits_for_a_session_decoding_here_and_batches_it():
    queue = BatchQueue(wait_s=30.0)
    a, b = Cache(), Cache()
    decoding(queue, a, b)
    queue.put(step(a))
    late = threading.Timer(0.3, lambda: queue.put(step(b)))
    late.start()
    batch, more = queue.take()  # waits for b's step rather than running a alone
    late.join()
    assert {id(s.cache) for s in batch} == {id(a), id(b)} and not more


def test_the_wait_is_bounded():
    queue = BatchQueue(wait_s=0.2)
    a, b = Cache(), Cache()
    decoding(queue, a, b)
    queue.put(step(a))  # b never comes back
    began = time.monotonic()
    batch, _ = queue.take()
    assert [s.cache for s in batch] == [a]
    assert 0.15 < time.monotonic() - began < 10.0


def test_a_closed_session_is_not_waited_for():
    queue = BatchQueue(wait_s=30.0)
    a, b = Cache(), Cache()
    decoding(queue, a, b)
    queue.forget(b)
    queue.put(step(a))
    began = time.monotonic()
    assert [s.cache for s in queue.take()[0]] == [a]
    assert time.monotonic() - began < 5.0


def test_rows_and_gathered_positions_cap_a_batch_oldest_first():
    queue = BatchQueue(max_rows=3, max_positions=1000, wait_s=0.0)
    caches = [Cache() for _ in range(5)]
    for c in caches:
        queue.put(step(c, start_pos=10))
    first, more = queue.take()
    assert [s.cache for s in first] == caches[:3] and more
    second, more = queue.take()
    assert [s.cache for s in second] == caches[3:] and not more
    # Rows times the longest cache: a long session goes in a batch of its own.
    queue.put(step(caches[0], start_pos=10))
    queue.put(step(caches[1], start_pos=600))
    queue.put(step(caches[2], start_pos=10))
    assert [s.cache for s in queue.take()[0]] == [caches[0]]
    assert [s.cache for s in queue.take()[0]] == [caches[1]]
    assert [s.cache for s in queue.take()[0]] == [caches[2]]


def test_one_take_is_scheduled_at_a_time():
    queue = BatchQueue(wait_s=0.0)
    assert queue.put(step(Cache()))
    assert not queue.put(step(Cache()))  # the take already scheduled will see it
    batch, more = queue.take()
    assert len(batch) == 2 and not more
    assert queue.put(step(Cache()))  # nothing scheduled any more


def test_draining_hands_back_every_waiting_step():
    queue = BatchQueue(wait_s=0.0)
    steps = [step(Cache()) for _ in range(3)]
    for s in steps:
        queue.put(s)
    assert queue.drain() == steps and len(queue) == 0


@pytest.mark.parametrize("kwargs", [{"max_rows": 0}, {"max_positions": 0}, {"wait_s": -1.0}])
def test_nonsense_limits_are_refused(kwargs):
    with pytest.raises(ValueError):
        BatchQueue(**kwargs)
