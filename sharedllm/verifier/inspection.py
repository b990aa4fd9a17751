"""Looking at one job: its route from the chain, its hops' transcripts, and the checks.

The challenger and the juror ask different questions of the same evidence. The challenger
asks "which hop, if any, is at fault?" (``Inspector.find_fault``, first fault in route order);
a juror asks "is the accused hop at fault?" (``Inspector.judge_hop``), which it must answer
even when another hop of the route cannot be reached.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
from eth_account.signers.local import LocalAccount

from sharedllm.chain.connection import Chain
from sharedllm.errors import TranscriptUnavailable, WindowClosing
from sharedllm.model.span import SpanRunner
from sharedllm.model.store import ModelStore
from sharedllm.verifier.checker import (
    Finding,
    RouteHop,
    check_bookkeeping,
    check_computation,
    check_own_receipts,
)
from sharedllm.verifier.events import ChainEvents
from sharedllm.verifier.ledger import VerifierLedger
from sharedllm.verifier.recompute import HopCheck, HopTranscript
from sharedllm.verifier.tolerance import TolerancePolicy
from sharedllm.verifier.transcript_fetch import fetch_transcript

log = logging.getLogger(__name__)

Fetch = Callable[..., Awaitable[HopTranscript]]
Fetched = HopTranscript | TranscriptUnavailable


@dataclass
class Timing:
    """How long things take here, to tell in advance whether a check fits in its window.

    ``recompute_s`` starts pessimistic (a loaded 2-core CPU) and follows what is measured.
    """

    tx_margin_s: float = 2.0  # a transaction must be mined before its window ends
    fetch_timeout_s: float = 30.0
    retry_after_s: float = 1.0
    recompute_s: float = 2e-3  # per position and layer, wall clock

    def learn(self, seconds: float, position_layers: int) -> None:
        if position_layers:
            self.recompute_s = 0.7 * self.recompute_s + 0.3 * seconds / position_layers


class Runners:
    """Span runners by (model, start, end), loaded once: shards are re-read only for a span
    not seen before."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store
        self._runners: dict[tuple[str, int, int], SpanRunner] = {}

    def get(self, model_id: str, start: int, end: int) -> SpanRunner:
        key = (model_id, start, end)
        if key not in self._runners:
            self._runners[key] = SpanRunner(self.store, self.store.manifest(model_id), start, end)
        return self._runners[key]


@dataclass(frozen=True)
class Gathered:
    """A job's route and what each hop showed (a transcript, or why it could not)."""

    job_id: str
    fields: dict[str, Any]
    route: list[RouteHop]
    model_id: str
    fetched: list[Fetched]

    @property
    def submitter_hop(self) -> int:
        hops = [i for i, h in enumerate(self.route) if h.address == self.fields["submitter"]]
        return hops[-1] if hops else len(self.route) - 1

    @property
    def commitment(self) -> bytes:
        return bytes.fromhex(self.fields["commitment"][2:])

    def unavailable(self, hop: int) -> TranscriptUnavailable | None:
        result = self.fetched[hop]
        return result if isinstance(result, TranscriptUnavailable) else None


class Inspector:
    def __init__(
        self,
        chain: Chain,
        account: LocalAccount,
        ledger: VerifierLedger,
        runners: Runners,
        policy: TolerancePolicy,
        fetch: Fetch = fetch_transcript,
        timing: Timing | None = None,
    ) -> None:
        self.chain = chain
        self.account = account
        self.ledger = ledger
        self.runners = runners
        self.policy = policy
        self.fetch = fetch
        self.timing = timing or Timing()
        self.events = ChainEvents(chain)
        self.http: aiohttp.ClientSession | None = None

    # -- gathering -------------------------------------------------------------------------

    async def gather(self, job_id: str, fields: dict[str, Any], ends: float) -> Gathered:
        """Fetch every hop's transcript at once (``ends``: the deadline the work must fit)."""
        route, model_id = await asyncio.to_thread(self._route, fields)
        self.need(ends, 1.0, "no time left to fetch the transcripts")
        fetched = await asyncio.gather(
            *(self._fetch(job_id, hop, info, ends) for hop, info in enumerate(route))
        )
        return Gathered(job_id, fields, route, model_id, list(fetched))

    def _route(self, fields: dict[str, Any]) -> tuple[list[RouteHop], str]:
        """The job's hops with their keys and spans, and its model: spans from the record's
        layer counts (a route's spans are contiguous from layer 0), keys and the model from
        the registry (``submitResult`` checked that every hop serves the job's model)."""
        route, start, model_id = [], 0, ""
        for address, layers in zip(fields["hops"], fields["layers"], strict=True):
            node = self.chain.registry.get_node(address)
            model_id = model_id or node.model_id
            route.append(RouteHop(address, bytes.fromhex(node.pubkey[2:]), start, start + layers))
            start += layers
        return route, model_id

    async def _fetch(self, job_id: str, hop: int, info: RouteHop, ends: float) -> Fetched:
        """One hop's transcript, with one retry for a refusal or a miss (a transcript may
        be written a moment after the commitment); the error itself if it stays unavailable."""
        node = await asyncio.to_thread(self.chain.registry.get_node, info.address)
        for attempt in (0, 1):
            timeout = min(self.timing.fetch_timeout_s, self.left(ends))
            try:
                return await self.fetch(
                    self.http, node.endpoint, info.address, job_id, hop, self.account,
                    self.chain.chain_id, self.chain.market.address, timeout_s=max(timeout, 0.5),
                )  # fmt: skip
            except TranscriptUnavailable as exc:
                retry = exc.code != "TRANSCRIPT_MALFORMED" and attempt == 0
                if not retry or self.left(ends) < self.timing.retry_after_s + 2.0:
                    return exc
                log.info("job %s hop %d: %s; retrying", job_id, hop, exc.message)
                await asyncio.sleep(self.timing.retry_after_s)
        raise AssertionError("unreachable")

    # -- the challenger's question ---------------------------------------------------------

    async def find_fault(self, evidence: Gathered, ends: float) -> Finding | None:
        """The first hop at fault: unavailable, then bookkeeping, then recomputation."""
        job_id = evidence.job_id
        for hop in range(len(evidence.route)):
            missing = evidence.unavailable(hop)
            if missing is not None:
                reason = missing.code.lower()
                self.ledger.record_check(job_id, hop, False, reason, detail=missing.message)
                return Finding(hop, reason, detail=missing.message)
        transcripts: list[HopTranscript] = list(evidence.fetched)  # type: ignore[arg-type]
        finding = await asyncio.to_thread(
            check_bookkeeping, job_id, evidence.route, transcripts, evidence.commitment,
            evidence.submitter_hop, int(evidence.fields["tokensServed"]),
        )  # fmt: skip
        if finding is not None:
            self.ledger.record_check(job_id, finding.hop, False, finding.reason,
                                     step=finding.step, detail=finding.detail)  # fmt: skip
            return finding
        pairs = list(enumerate(transcripts))
        return await asyncio.to_thread(self._recompute, evidence, pairs, ends)

    # -- the juror's question --------------------------------------------------------------

    async def judge_hop(self, evidence: Gathered, accused: int, ends: float) -> Finding | None:
        """A fault of hop ``accused`` (its receipts, the job's bookkeeping where it names this
        hop, its recomputed outputs), or None if it checks out. The caller decides what an
        unavailable accused hop means (it may be restarting)."""
        job_id = evidence.job_id
        missing = evidence.unavailable(accused)
        if missing is not None:
            return Finding(accused, missing.code.lower(), detail=missing.message)
        transcript: HopTranscript = evidence.fetched[accused]  # type: ignore[assignment]
        job = bytes.fromhex(job_id.removeprefix("0x"))
        finding = check_own_receipts(job, accused, evidence.route[accused], transcript)
        if finding is None and all(
            evidence.unavailable(h) is None for h in range(len(evidence.route))
        ):
            transcripts: list[HopTranscript] = list(evidence.fetched)  # type: ignore[arg-type]
            found = await asyncio.to_thread(
                check_bookkeeping, job_id, evidence.route, transcripts, evidence.commitment,
                evidence.submitter_hop, int(evidence.fields["tokensServed"]),
            )  # fmt: skip
            if found is not None and found.hop == accused:
                finding = found
        if finding is not None:
            self.ledger.record_check(job_id, accused, False, finding.reason,
                                     step=finding.step, detail=finding.detail)  # fmt: skip
            return finding
        return await asyncio.to_thread(self._recompute, evidence, [(accused, transcript)], ends)

    # -- recomputation ---------------------------------------------------------------------

    def _recompute(
        self, evidence: Gathered, pairs: Sequence[tuple[int, HopTranscript]], ends: float
    ) -> Finding | None:
        """Recompute the given (route index, transcript) pairs in order; the first fault."""
        route = evidence.route
        hops = [h for h, _ in pairs]
        chosen = [t for _, t in pairs]
        runners = [self.runners.get(evidence.model_id, route[h].start, route[h].end) for h in hops]
        started: dict[int, tuple[float, int]] = {}

        def before(i: int) -> None:
            work = sum(chosen[i].lengths) * (runners[i].end - runners[i].start)
            self.need(
                ends, work * self.timing.recompute_s, f"hop {hops[i]} would not be recomputed"
            )
            started[i] = (time.monotonic(), work)

        def record(i: int, result: HopCheck) -> None:
            began, work = started[i]
            self.timing.learn(time.monotonic() - began, work)
            v = result.verdict
            self.ledger.record_check(
                evidence.job_id, hops[i], v.ok, v.reason, step=v.step, position=v.position,
                score=v.score, worst_score=v.worst_score, cpu_seconds=result.cpu_seconds,
                detail=v.describe(),
            )  # fmt: skip

        finding = check_computation(runners, chosen, self.policy, before, record)
        return None if finding is None else replace(finding, hop=hops[finding.hop])

    # -- time ------------------------------------------------------------------------------

    def left(self, ends: float) -> float:
        """Seconds until ``ends``, less the time a transaction needs to be mined."""
        return ends - self.events.chain_time() - self.timing.tx_margin_s

    def need(self, ends: float, seconds: float, what: str) -> None:
        left = self.left(ends)
        if left < seconds:
            raise WindowClosing(f"{what}: {max(left, 0):.1f} s left, about {seconds:.1f} s needed")
