"""``sharedllm jobs``: the client's job book, each job's status refreshed from the JobMarket.

Statuses, in the order a job moves through them:

- ``signed``: the client signed it; no answer recorded, nothing on-chain yet;
- ``served``: the answer came back, no node has submitted it yet;
- ``committed``: a node submitted the result; the payment is locked until the challenge
  window ends;
- ``challenged``: a verifier disputed a hop; the payment is frozen until a jury decides;
- ``under review``: the jury is drawn and voting;
- ``upheld``: a fault was found (by a jury, or an over-charge proven): the client was
  refunded and the faulty hop slashed;
- ``finalized``: paid to the route (after a rejected dispute too: ``dispute`` says so);
- ``expired``: the deadline passed and no node submitted it, so no node ever can: nothing
  was or will be charged.

A job settled in a batch shows its batch (``batch``) and moves ``committed`` → ``finalized``
with it; ``refunded`` if its entry was proven wrong, ``unfunded`` if the escrow did not
cover the entry (nothing charged). A batched job disputed on its own leaves its batch and
reads like any other.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sharedllm.chain.amounts import format_share
from sharedllm.chain.connection import Chain
from sharedllm.client.batch_lookup import BatchPlace, batch_places
from sharedllm.client.job_book import BookedJob

ON_CHAIN = {
    "Submitted": "committed",
    "Finalized": "finalized",
    "Challenged": "upheld",
    "Disputed": "challenged",
}
SETTLED = ("finalized", "upheld", "expired", "refunded", "unfunded")


def dispute_of(chain: Chain, job_id: str) -> dict[str, Any] | None:
    """The court's dispute on the job, in the shape the CLI and the web page show."""
    d = chain.court.get_dispute(job_id)
    if d.phase == "None":
        return None
    return {
        "phase": d.phase.lower(),
        "hop": d.hop,
        "accused": d.accused,
        "kind": d.kind.lower(),
        "round": d.round,
        "jurors": len(d.jurors),
        "committed": d.committed,
        "revealed": d.revealed,
        "upholdVotes": d.uphold_votes,
        "commitEndsAt": d.commit_ends_at or None,
        "revealEndsAt": d.reveal_ends_at or None,
    }


def on_chain_status(status: str, dispute: dict[str, Any] | None) -> str:
    if status == "Disputed" and dispute is not None and dispute["phase"] == "voting":
        return "under review"
    return ON_CHAIN[status]


@dataclass(frozen=True)
class JobLine:
    booked: BookedJob
    status: str
    tokens: int | None
    cost: int | None  # what the chain locked or paid, else what the route reported
    submitted_at: int | None
    dispute: dict[str, Any] | None = None
    batch: BatchPlace | None = None

    def to_json(self) -> dict[str, Any]:
        b = self.booked
        return {
            "jobId": b.job_id,
            "status": self.status,
            "client": b.job.client,
            "modelId": b.job.model_id,
            "tokens": self.tokens,
            "cost": str(self.cost) if self.cost is not None else None,
            "maxCost": str(b.max_cost),
            "route": [
                {"address": address, "url": url, "span": [start, end]}
                for address, url, start, end in _hops(b)
            ],
            "signedAt": b.signed_at,
            "servedAt": b.served_at,
            "submittedAt": self.submitted_at,
            "deadline": b.job.deadline,
            "preview": b.text_preview,
            "dispute": self.dispute,
            "batch": self.batch.to_json() if self.batch is not None else None,
        }


def refresh(chain: Chain, jobs: Iterable[BookedJob]) -> list[JobLine]:
    """One ``getJob`` per booked job, then the batches of those the market has no record of;
    jobs booked against another market are left out."""
    now = chain.now()
    lines = []
    records = {}
    for booked in jobs:
        if booked.market is not None and booked.market.lower() != chain.market.address.lower():
            continue
        records[booked.job_id] = (booked, chain.market.get_job(booked.job_id))
    unrecorded = [b.job.client for b, r in records.values() if r.status not in ON_CHAIN]
    places = batch_places(chain, unrecorded) if unrecorded else {}
    for booked, record in records.values():
        if record.status in ON_CHAIN:
            dispute = dispute_of(chain, booked.job_id)
            lines.append(
                JobLine(
                    booked,
                    on_chain_status(record.status, dispute),
                    record.tokens_served,
                    record.cost,
                    record.submitted_at,
                    dispute,
                )
            )
            continue
        place = places.get(booked.job_id)
        if place is not None:
            lines.append(
                JobLine(
                    booked, place.status, place.tokens, place.cost, place.posted_at, None, place
                )
            )
            continue
        status = "expired" if booked.job.deadline < now else booked.status
        lines.append(JobLine(booked, status, booked.tokens, booked.cost, None))
    return lines


def job_lines(lines: list[JobLine], client: str | None) -> list[str]:
    """A table, newest last, with each job's route and answer preview beneath it."""
    whose = f" of {client}" if client else ""
    if not lines:
        return [f"no jobs{whose} in the job book"]
    header = ("JOB", "STATUS", "TOKENS", "COST", "SIGNED")
    rows = [header]
    for line in lines:
        b = line.booked
        status = line.status
        if line.dispute is not None and line.dispute["phase"] == "rejected":
            status += " (dispute rejected)"
        rows.append(
            (
                f"{b.job_id[:10]}…{b.job_id[-4:]}",
                status,
                str(line.tokens) if line.tokens is not None else "-",
                f"{format_share(line.cost)} SHARE" if line.cost is not None else "-",
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(b.signed_at)),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    out = [f"{len(lines)} job(s){whose}", ""]
    for index, cells in enumerate(rows):
        out.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
        if index == 0:
            continue
        booked = lines[index - 1].booked
        hops = " -> ".join(f"{url} [{s}:{e}]" for _, url, s, e in _hops(booked))
        out.append(f"    route: {hops}")
        dispute = lines[index - 1].dispute
        if dispute is not None:
            out.append(f"    dispute: {_dispute_line(dispute)}")
        batch = lines[index - 1].batch
        if batch is not None:
            out.append(f"    batch: #{batch.batch_id}, entry {batch.entry} ({batch.status})")
        if booked.text_preview:
            out.append(f"    answer: {_one_line(booked.text_preview)}")
    return out


def waiting_note(lines: list[JobLine], window: int, now: int) -> str:
    """What the unsettled jobs wait for, soonest first: ``2 finalized; 1 committed (its
    challenge window ends in 3 min 10 s); 1 served (waiting for a node's submission or
    batch, by its deadline in 52 min)``."""
    from sharedllm.chain.times import format_duration

    counts: dict[str, int] = {}
    waits: dict[str, int] = {}
    for line in lines:
        counts[line.status] = counts.get(line.status, 0) + 1
        if line.status == "committed" and line.submitted_at is not None:
            end = line.submitted_at + window
        elif line.status in ("signed", "served"):
            end = line.booked.job.deadline
        else:
            continue
        waits[line.status] = min(waits.get(line.status, end), end)
    parts = []
    for status, count in counts.items():
        part = f"{count} {status}"
        if status == "committed" and status in waits:
            part += f" (the first challenge window ends in {format_duration(waits[status] - now)})"
        elif status in waits:
            part += (
                " (waiting for a node's submission or batch, by the deadline in "
                f"{format_duration(waits[status] - now)})"
            )
        elif status in ("challenged", "under review"):
            part += " (waiting for the jury)"
        parts.append(part)
    return "; ".join(parts)


def _dispute_line(d: dict[str, Any]) -> str:
    what = f"hop {d['hop']} ({d['accused']}) accused of {d['kind']}"
    if d["phase"] == "drawing":
        return f"{what}; the jury is being drawn"
    if d["phase"] == "voting":
        return (f"{what}; {d['jurors']} jurors, {d['committed']} committed, "
                f"{d['revealed']} revealed")  # fmt: skip
    votes = f"{d['upholdVotes']} of {d['revealed']} revealed votes to uphold"
    return f"{what}; {d['phase']} ({votes})"


def _hops(booked: BookedJob) -> list[tuple[str, str, int, int]]:
    job = booked.job
    urls = list(booked.route_urls) + ["?"] * (len(job.route) - len(booked.route_urls))
    return list(zip(job.route, urls, job.span_starts, job.span_ends, strict=False))


def _one_line(text: str, limit: int = 72) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
