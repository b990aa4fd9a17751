"""Finding a peer that stopped answering while a long call to it is open.

A push to the next hop waits for every hop after it, so its deadline covers the rest of the
route: tens of seconds by default. A peer that froze (SIGSTOP, a laptop lid closed, a link
that drops every packet: its sockets stay open and nothing answers) would hold the call that
long. While such a call is open, the caller asks the same peer for its ``/info`` (answered by
the node's event loop, never queued behind computation); a peer that misses ``MISSES`` probes
in a row is named stalled and the call is abandoned. A slow peer that still answers keeps
its whole deadline, which the deadline handed down with the step bounds (``step_deadline``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sharedllm.errors import PeerError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Watch:
    after_s: float = 1.5  # a call that ends within this is never probed
    probe_timeout_s: float = 1.5
    every_s: float = 0.5
    misses: int = 2

    @property
    def worst_s(self) -> float:
        """The longest a frozen peer holds a watched call."""
        return self.after_s + self.misses * self.probe_timeout_s + (self.misses - 1) * self.every_s


WATCH = Watch()


async def watched(
    call: Awaitable[T],
    answers: Callable[[str, float], Awaitable[bool]],
    peer_url: str,
    watch: Watch = WATCH,
) -> T:
    """The result of ``call`` to ``peer_url``, or ``PeerError`` (``PEER_STALLED``, naming the
    peer in ``failed_url``) as soon as the peer stops answering ``answers`` probes."""
    task = asyncio.ensure_future(call)
    watcher = asyncio.create_task(_until_silent(answers, peer_url, watch))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done() and not watcher.done():  # we were cancelled
            task.cancel()
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    log.warning("%s stopped answering: %d probes in a row went unanswered", peer_url, watch.misses)
    raise PeerError(
        f"{peer_url} stopped answering (no answer to {watch.misses} probes in a row)",
        code="PEER_STALLED",
        failed_url=peer_url,
    )


async def _until_silent(
    answers: Callable[[str, float], Awaitable[bool]], url: str, watch: Watch
) -> None:
    await asyncio.sleep(watch.after_s)
    missed = 0
    while True:
        if await answers(url, watch.probe_timeout_s):
            missed = 0
        else:
            missed += 1
            if missed >= watch.misses:
                return
        await asyncio.sleep(watch.every_s)
