"""Replacing a hop that failed mid-answer, free or paid; ``InferenceSession`` inherits it.

When a hop fails (refused, reset, stalled, 5xx, lost session) the client replans that hop's
span, replays the hop's saved inputs into the replacement (they are the previous hop's saved
outputs, or for hop 0 the client's own), re-points the previous hop, and sends the step
again. Hops that had already run the step answer the resend from their history, so no cache
advances twice and the generated text is unchanged.

A paid session does the same under the job it holds: the client signs an amendment that
hands the dead hop's span to one node registered for exactly that span, from the position
where the dead hop stopped, and gives it to the replacement and every survivor (a new last hop
also gets the receipt chains of the steps it replayed, so that it can submit the job). Only
the replacement recomputes; the survivors are paid once. Where the dead hop stopped is where
the answer stopped, unless the failing step got through it and only the way back broke: the
hops after it then hold its receipt for that step, it is owed the step, and the amendment
starts after it (the resent step is answered from their history). When that is not possible (no
single node serves the span, the payer cannot sign mid-answer, a survivor refuses), the
client settles the job so far and starts a new one on a new route.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import TYPE_CHECKING, Any

import numpy as np

from sharedllm.errors import PeerError, RouteError, SharedLLMError
from sharedllm.protocol import frames
from sharedllm.protocol.amendment import Amendment
from sharedllm.protocol.frames import TensorFrame
from sharedllm.protocol.receipt_handoff import handoff_body
from sharedllm.protocol.session_msgs import Hop, RouteUpdate

if TYPE_CHECKING:
    from sharedllm.client.payer import PaidJob, Payer
    from sharedllm.client.planner import RoutePlanner
    from sharedllm.peers.http import PeerClient

log = logging.getLogger("sharedllm.client")
OPEN_TIMEOUT_S = 10.0
STATE_TIMEOUT_S = 2.0  # a hop's session state, asked for while a failover waits
STATE_POLL_S = 0.05


class Failover:
    """The failover half of ``InferenceSession``: it uses the session's route, its saved
    inputs and its calls to the hops (declared here for the type checker)."""

    planner: RoutePlanner
    peers: PeerClient
    payer: Payer | None
    paid: PaidJob | None
    model_id: str
    hidden_size: int
    step_timeout_s: float
    max_repairs: int
    session_id: str
    route: list[Hop]
    failovers: list[tuple[str, list[Hop]]]
    amendments: tuple[Amendment, ...]
    _excluded: set[str]
    _inputs: list[bytes]
    _lengths: list[int]

    position: Any
    open: Any
    _settle: Any
    _forget: Any
    _open_hop: Any
    _key_header: Any
    _with_url: Any
    _spawn: Any

    async def _restart_paid(self, failed: str) -> np.ndarray:
        """Paid failover: a job names its nodes, so a new route needs a new job. Close the old
        sessions (their last hop settles what was served), open the new route under a freshly
        signed job; returns the history [T, H] to send again from the new session's start.
        If the dead hop was the old route's last, a survivor is handed the receipts instead."""
        self._excluded.add(failed)
        old, old_paid = list(self.route), self.paid
        self._settle()
        await asyncio.gather(*(self._forget(h.url) for h in old if h.url != failed))
        if old and old[-1].url == failed and old_paid is not None and old_paid.receipts:
            await self._hand_over(old_paid, old[:-1])
        self.session_id = secrets.token_hex(16)
        await self.open()
        self.failovers.append((failed, list(self.route)))
        history = np.frombuffer(b"".join(self._inputs), dtype="<f4")
        self._inputs, self._lengths = [], []
        return history.reshape(-1, self.hidden_size)

    async def _amend_paid(self, failed: str, index: int, length: int) -> bool:
        """Replace a dead hop of the paid route under the same job; False if this failover
        must start a new job instead (see the module's docstring). Step ``index`` over
        ``length`` positions from ``self.position`` is the one that failed."""
        k = next((i for i, h in enumerate(self.route) if h.url == failed), None)
        if k is None:
            log.info("hop %s is no longer in the route: sending the step again", failed)
            return True  # already replaced by an earlier repair
        paid, payer = self.paid, self.payer
        if paid is None or payer is None or not payer.can_amend:
            return False
        old = self.route[k]
        self._excluded.add(failed)
        stopped = await self._stopped_at(k, self.position + length)
        for _ in range(self.max_repairs):
            try:
                sub = await self.planner.plan(self.model_id, old.start, old.end, self._excluded)
            except RouteError:
                return False
            if len(sub) != 1:
                return False  # the span is served only in parts: a new job must name them
            try:
                amendment = await payer.amend(paid, k, sub[0], stopped)
            except SharedLLMError as exc:
                log.warning("cannot amend the job for %s: %s", sub[0].url, exc)
                self._excluded.add(sub[0].url)
                continue
            held = self.amendments
            self.amendments = paid.amendments
            route = self.route[:k] + sub + self.route[k + 1 :]
            try:
                await self._rebuild(route, k, 1, index)
                if k == len(route) - 1 and index > 0:
                    await self._give_chains(route[k].url, paid, index)
            except SharedLLMError as exc:
                # Only the replacement saw this amendment: drop it, and try another node, or
                # (another hop failed meanwhile) a new job on a new route.
                paid.amendments, self.amendments = held, held
                paid.replacements.pop()
                self._spawn(self._forget(sub[0].url))
                if failed_url(exc) != sub[0].url:
                    log.warning("rebuilding hop %d failed elsewhere: %s", k, exc)
                    return False
                self._excluded.add(sub[0].url)
                continue
            try:
                await self._amend_survivors(route, k)
            except SharedLLMError as exc:
                log.warning("a survivor refused the amendment: %s", exc)
                self.route = route
                return False
            self.route = route
            self.failovers.append((failed, list(route)))
            self._spawn(self._forget(failed))
            log.info("hop %d of job %s now %s from position %d", k, paid.signed.job_id,
                     sub[0].url, amendment.from_position)  # fmt: skip
            return True
        return False

    async def _stopped_at(self, k: int, upto: int) -> int:
        """The position where hop ``k`` stopped serving: the furthest that a hop after it
        has reached (it got there through hop ``k``), at least ``self.position`` and at most
        ``upto``, the end of the failing step. A hop ``k`` that still answers may still be
        running the step or pushing it on (only its link back broke): that is waited for
        first, at most one step's timeout. A hop that does not answer counts for nothing."""
        failed = self.route[k].url
        deadline = asyncio.get_running_loop().time() + self.step_timeout_s
        while (state := await self._session_state(failed)) is not None:
            if state.get("busy_steps") == 0 or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(STATE_POLL_S)

        async def reached(hop: Hop) -> int:
            state = await self._session_state(hop.url)
            position = state.get("position") if state is not None else None
            return position if isinstance(position, int) and position <= upto else 0

        later = await asyncio.gather(*(reached(hop) for hop in self.route[k + 1 :]))
        return max([self.position, *later])

    async def _session_state(self, url: str) -> dict[str, Any] | None:
        """A hop's ``GET /sessions/{id}``, or None if it does not answer soon."""
        try:
            return await self.peers.get_json(
                f"{url}/sessions/{self.session_id}", STATE_TIMEOUT_S, headers=self._key_header(url)
            )
        except SharedLLMError:
            return None

    async def _give_chains(self, url: str, paid: PaidJob, upto: int) -> None:
        """A new last hop holds no receipts for the steps it replayed; the client holds
        every step's chain (the dead last hop's receipt included) and hands them over, so
        that the new last hop can submit the whole job."""
        body = handoff_body({step: paid.receipts[step] for step in range(upto)})
        await self._with_url(
            url,
            self.peers.post_json(
                f"{url}/sessions/{self.session_id}/receipts",
                body,
                OPEN_TIMEOUT_S,
                self._key_header(url),
            ),
            any_error=True,
        )

    async def _amend_survivors(self, route: list[Hop], k: int) -> None:
        """Give every other hop the amendments, before any step reaches the replacement."""
        body = {"amendments": [a.to_json() for a in self.amendments]}
        await asyncio.gather(
            *(
                self._with_url(
                    hop.url,
                    self.peers.post_json(
                        f"{hop.url}/sessions/{self.session_id}/amend",
                        body,
                        OPEN_TIMEOUT_S,
                        self._key_header(hop.url),
                    ),
                    any_error=True,
                )
                for j, hop in enumerate(route)
                if j != k
            )
        )

    async def _hand_over(self, paid: PaidJob, survivors: list[Hop]) -> None:
        """The dead last hop held the only full receipt chains: give them to a survivor of the
        old route (nearest the end first) so it submits the old job and its hops get paid.
        Best effort: the answer goes on whatever happens here."""
        url = f"/jobs/{paid.signed.job_id}/receipts"
        body = handoff_body(paid.receipts)
        for hop in reversed(survivors):
            try:
                answer = await self.peers.post_json(hop.url + url, body, OPEN_TIMEOUT_S)
            except SharedLLMError as exc:
                log.warning("hop %s refused the old job's receipts: %s", hop.url, exc)
                if exc.code == "JobAlreadySubmitted":
                    return  # a hop has it already (an earlier try that timed out, say)
                continue
            except Exception as exc:  # settling the old job must never break the answer
                log.warning("handing receipts to %s failed: %r", hop.url, exc)
                continue
            log.info("hop %s submits job %s: %s", hop.url, paid.signed.job_id, answer)
            return
        log.warning("no hop took job %s: its hops will not be paid", paid.signed.job_id)

    async def _repair(self, failed: str, index: int, exclude: bool = True) -> None:
        """Replace hop ``failed`` from step ``index`` on; ``exclude=False`` lets the planner
        choose the same node again (it is healthy, only our session there is gone)."""
        k = next((i for i, h in enumerate(self.route) if h.url == failed), None)
        if k is None:
            return  # already replaced by an earlier repair
        if exclude:
            self._excluded.add(failed)
        old = self.route[k]
        for _ in range(self.max_repairs):
            sub = await self.planner.plan(self.model_id, old.start, old.end, self._excluded)
            route = self.route[:k] + sub + self.route[k + 1 :]
            try:
                await self._rebuild(route, k, len(sub), index)
            except SharedLLMError as exc:
                bad = failed_url(exc)
                if bad is None or bad not in {h.url for h in sub}:
                    raise
                self._excluded.add(bad)
                continue
            break
        else:
            raise PeerError(f"could not replace hop {k} ({failed})", failed_url=failed)
        self.route = route
        self.failovers.append((failed, list(route)))
        if failed not in {h.url for h in route}:
            self._spawn(self._forget(failed))

    async def _rebuild(self, route: list[Hop], k: int, count: int, index: int) -> None:
        """Open the replacement hops route[k:k+count], replay, and re-point hop k-1."""
        inputs = None
        if index > 0:
            if k == 0:
                inputs = TensorFrame(
                    "float32",
                    (1, sum(self._lengths), self.hidden_size),
                    b"".join(self._inputs),
                    {"steps": list(self._lengths)},
                )
            else:
                prev = self.route[k - 1].url
                inputs = await self._with_url(
                    prev,
                    self.peers.get_frame(
                        f"{prev}/sessions/{self.session_id}/history?which=outputs&upto={index}",
                        self.step_timeout_s,
                        self._key_header(prev),
                    ),
                )
                inputs = TensorFrame(
                    inputs.dtype, inputs.shape, inputs.data, {"steps": self._lengths}
                )
        for j in range(k, k + count):
            url = route[j].url
            await self._open_hop(route, j)
            if inputs is not None:
                body = await self._with_url(
                    url,
                    self.peers.post_frame(
                        f"{url}/sessions/{self.session_id}/replay",
                        inputs,
                        self.step_timeout_s + 0.5 * index,
                        self._key_header(url),
                    ),
                    any_error=True,
                )
                out = frames.decode(body)
                inputs = TensorFrame(out.dtype, out.shape, out.data, {"steps": self._lengths})
        if k > 0:
            prev = route[k - 1].url
            await self._with_url(
                prev,
                self.peers.post_json(
                    f"{prev}/sessions/{self.session_id}/route",
                    RouteUpdate(tuple(route), k - 1).to_json(),
                    OPEN_TIMEOUT_S,
                    self._key_header(prev),
                ),
            )


def failed_url(exc: SharedLLMError) -> str | None:
    url = exc.details.get("failed_url")
    return url if isinstance(url, str) else None
