"""Which batch paid a client's job: nodes that settle in batches leave no record per job on
chain, only an ``EntryPosted`` event per client and batch; the batch's jobs come from its
poster, checked against the chain (``peers.batch_fetch``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sharedllm.chain.connection import Chain
from sharedllm.errors import SharedLLMError
from sharedllm.peers.batch_fetch import read_batch_now

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchPlace:
    """A job's batch and what became of it there: ``committed`` (the batch's window is
    running), ``finalized`` (paid to the route), ``refunded`` (the poster's bookkeeping was
    proven wrong: the client got the entry back) or ``unfunded`` (the escrow did not cover
    the entry when it was posted: nothing was charged)."""

    batch_id: int
    entry: int
    status: str
    tokens: int
    cost: int
    posted_at: int

    def to_json(self) -> dict[str, Any]:
        return {"batchId": self.batch_id, "entry": self.entry, "status": self.status}


def batch_places(chain: Chain, clients: Iterable[str]) -> dict[str, BatchPlace]:
    """Every job of ``clients`` found in a posted batch, by job id."""
    places: dict[str, BatchPlace] = {}
    for client in set(clients):
        for posted in chain.batches.entries_posted(client, chain.deployment.deploy_block):
            batch_id, index = posted.batch_id, posted.index
            try:
                entries = read_batch_now(chain, batch_id)
            except SharedLLMError as exc:
                log.info("batch %d: %s", batch_id, exc)
                continue
            record = chain.batches.get_batch(batch_id)
            if not posted.funded:
                status = "unfunded"
            elif record.voided >> index & 1:
                status = "refunded"
            elif record.status == "Finalized":
                status = "finalized"
            else:
                status = "committed"
            for job in entries[index].jobs:
                places["0x" + job.job_hash.hex()] = BatchPlace(
                    batch_id, index, status, job.tokens_served, sum(job.amounts()),
                    record.posted_at,
                )  # fmt: skip
    return places
