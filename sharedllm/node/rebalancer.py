"""A node that moves to where the network is thin (``placement/rebalance.py`` decides).

Every ``rebalance_interval_s`` (plus a random part of it, so that nodes started together do
not look together) the node probes its peers and asks whether it should move. A move must
still be wanted after a second random delay and a second look, and a node that moved stays
at least three intervals. Two nodes whose second looks fell within one probe of each other
would both go: so a mover announces its target first, looks once more after
``ANNOUNCE_S``, and of the nodes announcing overlapping targets only the one with the
lowest key goes on.

Moving is done so that nothing is lost: the node says ``moving_to`` at /info at once (peers
count it at its target, clients plan around it) and opens no new session; it fetches the
target's missing shards from peers (hash-checked), loads the new layers beside the old,
waits for the old span's sessions to finish, records the new span (``move_registration``;
the jobs served on the old span stay payable), and only then serves it and drops the old
layers. A staked node plans no move while the registry's terms lock since its last change
of span or price lasts. If that does not happen within ``move_drain_s`` the move is called
off and the node stays, serving what it served.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

from sharedllm.errors import SharedLLMError
from sharedllm.node.handlers import NodeState
from sharedllm.node.move_registration import MoveRegistration
from sharedllm.node.shard_fetch import fetch_missing_shards
from sharedllm.node.span_worker import SpanWorker
from sharedllm.peers.probe import Candidate, probe_all
from sharedllm.placement.rebalance import Move, plan_move

log = logging.getLogger("sharedllm.node")
STAY_INTERVALS = 3  # after a move, the node looks again only after this many intervals
DRAIN_POLL_S = 0.2
ANNOUNCE_S = 1.0  # from announcing a move to the look for others announcing the same


class Rebalancer:
    def __init__(
        self,
        state: NodeState,
        own_url: str,
        build_worker: Callable[[int, int], SpanWorker],
        registration: MoveRegistration,
        *,
        rng: random.Random | None = None,
    ) -> None:
        """``build_worker(start, end)`` loads and warms a worker for other layers (on a
        thread: it reads shards and runs torch)."""
        assert state.config.rebalance_interval_s is not None
        self.state = state
        self.own_url = own_url
        self.build_worker = build_worker
        self.registration = registration
        self.interval = state.config.rebalance_interval_s
        self.rng = rng or random.Random()

    async def run(self) -> None:
        stay = 0.0
        while True:
            await asyncio.sleep(stay + self.interval * (1 + self.rng.random()))
            stay = 0.0
            try:
                move = await self.check()
                if move is None:
                    continue
                await asyncio.sleep(self.interval * self.rng.random())
                move = await self.check()  # still wanted after the delay?
                if move is not None and await self.move(move):
                    stay = STAY_INTERVALS * self.interval
            except SharedLLMError as exc:  # a peer or shard problem: look again next time
                log.warning("rebalance: %s", exc)

    async def check(self) -> Move | None:
        """Whether to move, from what the live peers serve now and how fast each serves it."""
        refusal = await self.registration.move_refusal()
        if refusal is not None:
            log.debug("rebalance: no move for now: %s", refusal)
            return None
        worker = self.state.worker
        if worker.queued_steps == 0:
            await worker.measure_speed()  # this node's own figure, fresh
        peers = await self._peers()
        return plan_move(
            (worker.start, worker.end),
            [c.info.planned_span for c in peers],
            worker.manifest.num_layers,
            speeds=[worker.tokens_per_s, *(c.info.tokens_per_s for c in peers)],
        )

    async def _peers(self) -> list[Candidate]:
        """The other live nodes on this node's model, as their /info answers now."""
        st = self.state
        urls = await self.registration.peer_urls(st.peers.trust)
        found = await probe_all(st.peers, [u for u in urls if u != self.own_url])
        own_key = st.config.public_key
        return [
            c
            for c in found
            if c.info.model_id == st.worker.manifest.model_id
            and not (own_key is not None and c.info.public_key == own_key)
        ]

    async def _outranked(self, move: Move) -> str | None:
        """A peer with a lower key announcing a target that overlaps ``move``'s, if any."""
        mine = self.state.config.public_key or self.own_url
        for c in await self._peers():
            theirs = c.info.moving_to
            overlaps = theirs is not None and theirs[0] < move.end and move.start < theirs[1]
            if overlaps and (c.info.public_key or c.url) < mine:
                return c.url
        return None

    async def move(self, move: Move) -> bool:
        """Move to ``move``'s layers; False if it was called off (the node stays)."""
        st = self.state
        old = st.worker
        began = time.monotonic()
        st.moving_to = (move.start, move.end)
        log.info(
            "moving from layers %d:%d to %d:%d: %s",
            old.start, old.end, move.start, move.end, move.reason,
        )  # fmt: skip
        new: SpanWorker | None = None
        try:
            await asyncio.sleep(ANNOUNCE_S)
            rival = await self._outranked(move)
            if rival is not None:
                log.info("move to %d:%d called off: %s moves there", move.start, move.end, rival)
                return False
            # Shards come from any peer (each is checked against its hash as it arrives).
            listed = await self.registration.peer_urls(st.peers.trust)
            sources = list(dict.fromkeys([*st.config.peers, *listed]))
            await fetch_missing_shards(
                st.peers, st.store, old.manifest, move.start, move.end, sources
            )
            new = await asyncio.to_thread(self.build_worker, move.start, move.end)
            if not await self._drained(began + st.config.move_drain_s):
                log.warning(
                    "move to %d:%d called off: %d sessions still open after %.0f s",
                    move.start, move.end, st.sessions.open_count, st.config.move_drain_s,
                )  # fmt: skip
                return False
            await self.registration.moved(move.start, move.end)
            st.worker = new
            st.sessions.use(new)
            new = None
            old.close()
            log.info(
                "moved from layers %d:%d to %d:%d in %.1f s",
                old.start, old.end, move.start, move.end, time.monotonic() - began,
            )  # fmt: skip
            return True
        finally:
            st.moving_to = None
            if new is not None:
                new.close()

    async def _drained(self, deadline: float) -> bool:
        """Wait until no session is open; False on time."""
        while self.state.sessions.open_count > 0:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(DRAIN_POLL_S)
        return True
