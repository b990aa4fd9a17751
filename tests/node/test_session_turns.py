"""A node's sessions under clients that hold more than they use: what keeps a session open,
how many requests may wait on one, and how a full free node makes room for a newcomer.
Against a real span worker (one layer of the real model)."""

from __future__ import annotations

import asyncio
import time

import pytest

from sharedllm.errors import SessionLimit, SessionReclaimed, SessionUnknown
from sharedllm.node.config import NodeConfig
from sharedllm.node.sessions import MAX_WAITING, SessionManager
from sharedllm.node.span_worker import SpanWorker
from sharedllm.protocol.session_msgs import Hop, OpenSession

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def worker(store, manifest):
    span = SpanWorker(store, manifest, 29, 30)
    yield span
    span.close()


def manager(worker: SpanWorker, **config) -> SessionManager:
    return SessionManager(worker, NodeConfig(**config))


def opening(sid: str, model_id: str, max_length: int = 64) -> OpenSession:
    return OpenSession(sid, model_id, (Hop("http://n:1", 29, 30),), 0, max_length)


def test_reading_a_session_does_not_keep_it_open(worker, manifest):
    """Proof of concept: a client that polled its session's state every few seconds once kept
    it (and its cache) open forever without stepping. The clock runs from the last step."""
    sessions = manager(worker, idle_timeout_s=5.0)
    s = sessions.open(opening("a", manifest.model_id))
    s.steps.append(object())  # it stepped once (not unstepped)
    s.last_used -= 6.0
    for _ in range(3):
        assert sessions.get("a") is s
    assert sessions.expired() == ["a"]


def test_a_session_takes_at_most_four_waiting_requests(worker, manifest):
    """Proof of concept: requests piled on one session each held a connection and a body in
    memory until its turn. The fifth is refused with SESSION_BUSY; the others run in turn."""
    sessions = manager(worker)
    s = sessions.open(opening("a", manifest.model_id))

    async def run() -> tuple[list[int], SessionLimit]:
        order: list[int] = []
        release = asyncio.Event()

        async def request(i: int) -> None:
            async with s.turn():
                if i == 0:
                    await release.wait()
                order.append(i)

        tasks = [asyncio.create_task(request(i)) for i in range(MAX_WAITING)]
        await asyncio.sleep(0.05)
        with pytest.raises(SessionLimit) as refused:
            await request(MAX_WAITING)
        assert s.idle_for(time.monotonic() + 1000) == 0.0  # in use while requests wait
        release.set()
        await asyncio.gather(*tasks)
        return order, refused.value

    order, refused = asyncio.run(run())
    assert order == list(range(MAX_WAITING))
    assert refused.code == "SESSION_BUSY" and refused.http_status == 429
    assert s.waiting == 0


def test_a_request_waiting_on_a_session_closed_meanwhile_is_refused(worker, manifest):
    sessions = manager(worker)
    s = sessions.open(opening("a", manifest.model_id))

    async def run() -> None:
        async with s.turn():
            waiter = asyncio.create_task(_enter(s))
            await asyncio.sleep(0.05)
            await sessions.close("a")
        with pytest.raises(SessionUnknown) as gone:
            await waiter
        assert gone.value.code == "SESSION_UNKNOWN"

    asyncio.run(run())


async def _enter(s) -> None:
    async with s.turn():
        raise AssertionError("ran on a closed session")


def test_a_full_free_node_reclaims_an_idle_hog_for_a_newcomer(worker, manifest):
    """Proof of concept: one client opened a session reserving nearly all of a free node's
    cache, stepped it once and kept it; every other client was refused for as long as it
    liked. Now the hog's idle session gives way to a newcomer within its share, the hog
    learns it (SESSION_RECLAIMED) and may open again with the share it is owed now."""
    bpt = worker.kv_bytes_per_token() + 2 * worker.hidden_size * 4
    sessions = manager(worker, cache_budget_bytes=1000 * bpt, reclaim_idle_s=5.0)
    model = manifest.model_id
    hog = sessions.open(opening("hog", model, max_length=900), "10.0.0.1", per_client=True)
    newcomer = opening("new", model, max_length=300)

    async def run() -> None:
        assert await sessions.make_room(newcomer, "10.0.0.2") == []  # the hog is not idle yet
        with pytest.raises(SessionLimit):
            sessions.open(newcomer, "10.0.0.2", per_client=True)
        hog.last_used -= 6.0
        assert [s.id for s in await sessions.make_room(newcomer, "10.0.0.2")] == ["hog"]
        sessions.open(newcomer, "10.0.0.2", per_client=True)
        with pytest.raises(SessionReclaimed) as reclaimed:
            sessions.get("hog")
        assert reclaimed.value.http_status == 410
        # The hog opens again within its share (half the node); the tombstone goes.
        again = opening("hog", model, max_length=500)
        assert await sessions.make_room(again, "10.0.0.1") == []
        sessions.open(again, "10.0.0.1", per_client=True)
        assert sessions.get("hog").request.max_length == 500

    asyncio.run(run())


def test_a_newcomer_over_its_share_takes_nothing(worker, manifest):
    bpt = worker.kv_bytes_per_token() + 2 * worker.hidden_size * 4
    sessions = manager(worker, cache_budget_bytes=1000 * bpt, reclaim_idle_s=5.0)
    hog = sessions.open(opening("hog", manifest.model_id, 900), "10.0.0.1", per_client=True)
    hog.last_used -= 60.0

    async def run() -> None:
        greedy = opening("greedy", manifest.model_id, max_length=600)  # over half the node
        assert await sessions.make_room(greedy, "10.0.0.2") == []
        assert sessions.get("hog") is hog

    asyncio.run(run())


def test_a_step_hands_on_what_is_left_of_the_clients_budget(worker, manifest):
    """Proof of concept: a node once waited its own 30 s for the next hop whatever the client
    waited, so with a client waiting 8 s the client gave up first and blamed hop 0 for a stall
    further down. Now the next hop gets the budget less what was spent and a margin."""
    sessions = manager(worker)  # --step-timeout 30
    hops = tuple(Hop(f"http://n:{i}", 29, 30) for i in range(3))
    s = sessions.open(OpenSession("a", manifest.model_id, hops, 0, 64))
    handed, wait = sessions.push_budget(s, 8.0, 0.25)
    assert handed == pytest.approx(8.0 - 0.25 - 1.0)
    assert handed < wait < 8.0  # the client's own wait for hop 0


def test_a_node_never_waits_past_its_own_step_timeout(worker, manifest):
    sessions = manager(worker, step_timeout_s=5.0)
    hops = tuple(Hop(f"http://n:{i}", 29, 30) for i in range(4))
    s = sessions.open(OpenSession("a", manifest.model_id, hops, 0, 64))
    # Its own timeout, a margin more per hop after it: hop 0 of 4 allows 5 + 3 s, and hands
    # on what is left after its margin; the hop before the last hands on exactly 5 s.
    assert sessions.push_budget(s, 600.0, 0.0) == (7.0, 7.5)
    assert sessions.push_budget(s, None, 0.0) == (7.0, 7.5)
    assert sessions.push_budget(s, 4.0, 0.0) == (3.0, 3.5)  # the client's shorter budget
    last_but_one = sessions.open(OpenSession("b", manifest.model_id, hops, 2, 64))
    assert sessions.push_budget(last_but_one, 600.0, 0.0) == (5.0, 5.5)
