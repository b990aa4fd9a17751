"""When a transcript may go: once nobody can challenge its job any more.

Every hop prunes its own, following the ledger that the settler keeps in step with the chain
(only the last hop submits and finalizes, but every hop records the outcome):

- finalized or challenged: the challenge window is over, the verdict is in;
- refused by the chain: the job will never be committed, so never challenged;
- served but never submitted, well past its deadline plus a challenge window: the last
  hop died with the receipts, and the contract would refuse a submission now;
- no ledger row at all, after a grace period: a crash between writing the transcript and
  recording the job; nothing will ever ask for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sharedllm.node.ledger import CHALLENGED, FINALIZED, REFUSED, SERVED, Ledger
from sharedllm.node.transcripts import TranscriptStore

log = logging.getLogger(__name__)

SETTLED = (FINALIZED, CHALLENGED, REFUSED)
ORPHAN_GRACE_S = 300.0
UNSUBMITTED_GRACE_S = 60.0


def prune(
    store: TranscriptStore,
    ledger: Ledger,
    chain_status: Callable[[str], str],
    challenge_window: int,
    now: float | None = None,
) -> list[str]:
    """Delete the transcripts no one can ask for any more; returns the job ids pruned."""
    now = time.time() if now is None else now
    pruned = []
    for job_id, written_at in list(store.job_ids()):
        entry = ledger.get(job_id)
        if entry is None:
            gone = now - written_at > ORPHAN_GRACE_S
        elif entry.status in SETTLED:
            gone = True
        elif entry.status == SERVED:
            too_late = int(entry.job["deadline"]) + challenge_window + UNSUBMITTED_GRACE_S
            gone = now > too_late and chain_status(job_id) == "None"
            if gone:
                ledger.set_status(job_id, REFUSED, error="NeverSubmitted")
        else:
            gone = False
        if gone and store.discard(job_id):
            pruned.append(job_id)
            log.info("pruned the transcript of job %s", job_id)
    return pruned
