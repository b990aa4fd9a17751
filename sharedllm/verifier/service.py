"""The verifier service: follow commitments, draw which to check, check them, challenge.

One pass (``run_once``) reads the commitments mined since the ledger's cursor, draws for
each (``selection``), and then works through the selected jobs oldest first, so the job
whose window closes soonest goes first. A job is marked ``checking`` before any work;
before every transaction the chain is asked whether this verifier's vote is already there.
CPU work (recomputing spans) runs in a worker thread, so the event loop keeps fetching.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aiohttp
from eth_account.signers.local import LocalAccount

from sharedllm.chain.connection import Chain
from sharedllm.errors import ContractRevert, SharedLLMError, TranscriptUnavailable, WindowClosing
from sharedllm.model.span import SpanRunner
from sharedllm.model.store import ModelStore
from sharedllm.verifier.checker import Finding, RouteHop, check_bookkeeping, check_computation
from sharedllm.verifier.events import ChainEvents, Commitment
from sharedllm.verifier.ledger import (
    CHALLENGED,
    CHECKING,
    MISSED,
    OPEN,
    PASSED,
    Evidence,
    LedgerJob,
    SeenJob,
    VerifierLedger,
)
from sharedllm.verifier.recompute import HopCheck, HopTranscript
from sharedllm.verifier.selection import SelectionPolicy
from sharedllm.verifier.tolerance import TolerancePolicy
from sharedllm.verifier.transcript_fetch import fetch_transcript

log = logging.getLogger(__name__)


Fetch = Callable[..., Awaitable[HopTranscript]]


@dataclass
class Timing:
    """How long things take here, to tell in advance whether a check fits in its window.

    ``recompute_s`` starts pessimistic (a loaded 2-core CPU) and follows what is measured.
    """

    tx_margin_s: float = 2.0  # a challenge must be mined before the window ends
    fetch_timeout_s: float = 30.0
    retry_after_s: float = 1.0
    recompute_s: float = 2e-3  # per position and layer, wall clock
    measured: list[float] = field(default_factory=list)

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


class VerifierService:
    def __init__(
        self,
        chain: Chain,
        account: LocalAccount,
        ledger: VerifierLedger,
        store: ModelStore,
        selection: SelectionPolicy,
        *,
        policy: TolerancePolicy | None = None,
        fetch: Fetch = fetch_transcript,
        timing: Timing | None = None,
        report: Callable[[str], None] = lambda line: print(line, flush=True),
        fault: Callable[[str], None] | None = None,
    ) -> None:
        """``fault`` is a test's fault point (``sharedllm.testing.faulty_verifier``), called
        by name in the middle of a check (``mid_check``, once the transcripts arrived) and
        right after a challenge is mined, before the ledger records it (``after_challenge``)."""
        self.fault = fault
        self.chain = chain
        self.account = account
        self.ledger = ledger
        self.selection = selection
        self.policy = policy or TolerancePolicy()
        self.fetch = fetch
        self.timing = timing or Timing()
        self.report = report
        self.runners = Runners(store)
        self.events = ChainEvents(chain)
        self.window = int(chain.market.params()["challengeWindow"])
        self._http: aiohttp.ClientSession | None = None

    # -- the loop --------------------------------------------------------------------------

    async def run(self, interval: float = 1.0, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        async with aiohttp.ClientSession() as http:
            self._http = http
            while not stop.is_set():
                try:
                    await self.run_once()
                except SharedLLMError as exc:  # the RPC may be down for a while; keep going
                    log.warning("verifier pass: %s", exc)
                except Exception:  # one bad pass must not stop the verifier for good
                    log.exception("verifier pass failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)

    async def run_once(self) -> None:
        await asyncio.to_thread(self.scan)
        for job in list(self.ledger.with_status(*OPEN)):
            await self.process(job)

    def scan(self) -> int:
        """Record the commitments below the newest block that has a successor; returns how
        many were new. A commitment in the newest block waits a pass for its random block."""
        cursor = self.ledger.cursor(self.chain.deployment.deploy_block)
        last = self.events.head() - 1
        if last < cursor:
            return 0
        seen = [self._draw(c) for c in self.events.commitments(cursor, last)]
        self.ledger.record_seen(seen, last + 1)
        for job in seen:  # a selected job is what an operator watches; a skipped one is not
            log.log(logging.INFO if job.selected else logging.DEBUG,
                    "job %s at block %d: %s (draw %s)", job.job_id, job.block,
                    "selected" if job.selected else "skipped", job.random[:12])  # fmt: skip
        return len(seen)

    def _draw(self, c: Commitment) -> SeenJob:
        random_block = self.events.block_hash(c.block + 1)
        draw = self.selection.draw(random_block, c.job_id, self.account.address)
        return SeenJob(c.job_id, c.block, c.submitter, c.commitment, draw.hex, draw.selected)

    # -- one job ---------------------------------------------------------------------------

    async def process(self, job: LedgerJob) -> str:
        """Check one selected job and settle its ledger row; returns the new status."""
        if await self._settled_on_chain(job):
            return self.ledger.get(job.job_id).status
        record = await asyncio.to_thread(self.chain.market.get_job, job.job_id)
        ends = int(record.fields["submittedAt"]) + self.window
        self.ledger.set_status(job.job_id, CHECKING)
        try:
            finding = await self._check(job, record.fields, ends)
        except WindowClosing as exc:
            return self._missed(job.job_id, exc.message)
        if finding is None:
            self.ledger.set_status(job.job_id, PASSED, reason="")
            self.report(f"verdict {job.job_id} passed")
            return PASSED
        return await self._challenge(job, finding, ends)

    async def _settled_on_chain(self, job: LedgerJob) -> bool:
        """True if there is nothing left to do: our vote is on-chain (a crash after sending
        it), or the job is no longer pending."""
        vote = await asyncio.to_thread(
            self.events.our_vote, job.job_id, self.account.address, job.block
        )
        if vote is not None:
            evidence = vote.evidence
            self.ledger.record_challenge(job.job_id, vote.hop, evidence, vote.tx, vote.block)
            self.report(f"verdict {job.job_id} challenged hop={vote.hop} tx={vote.tx} (found)")
            return True
        status = (await asyncio.to_thread(self.chain.market.get_job, job.job_id)).status
        if status != "Submitted":
            self._missed(job.job_id, f"the job was {status.lower()} before it was checked")
            return True
        return False

    async def _check(self, job: LedgerJob, fields: dict, ends: float) -> Finding | None:
        route, model_id = await asyncio.to_thread(self._route, fields)
        self._need(ends, 1.0, "no time left to fetch the transcripts")
        fetched = await asyncio.gather(
            *(self._fetch(job.job_id, hop, info, ends) for hop, info in enumerate(route))
        )
        if self.fault is not None:
            self.fault("mid_check")
        for hop, result in enumerate(fetched):
            if isinstance(result, TranscriptUnavailable):
                self.ledger.record_check(job.job_id, hop, False, result.code.lower(),
                                         detail=result.message)  # fmt: skip
                return Finding(hop, result.code.lower(), detail=result.message)
        transcripts: list[HopTranscript] = list(fetched)  # type: ignore[arg-type]
        submitter = _submitter_hop(fields, route)
        commitment = bytes.fromhex(fields["commitment"][2:])
        finding = await asyncio.to_thread(
            check_bookkeeping, job.job_id, route, transcripts, commitment, submitter,
            int(fields["tokensServed"]),
        )  # fmt: skip
        if finding is not None:
            self.ledger.record_check(job.job_id, finding.hop, False, finding.reason,
                                     step=finding.step, detail=finding.detail)  # fmt: skip
            return finding
        runners = [self.runners.get(model_id, h.start, h.end) for h in route]
        return await asyncio.to_thread(self._recompute, job.job_id, runners, transcripts, ends)

    def _route(self, fields: dict) -> tuple[list[RouteHop], str]:
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

    async def _fetch(
        self, job_id: str, hop: int, info: RouteHop, ends: float
    ) -> HopTranscript | TranscriptUnavailable:
        """One hop's transcript, with one retry for a refusal or a miss (a transcript may
        be written a moment after the commitment); the error itself if it stays unavailable."""
        node = await asyncio.to_thread(self.chain.registry.get_node, info.address)
        for attempt in (0, 1):
            timeout = min(self.timing.fetch_timeout_s, self._left(ends))
            try:
                return await self.fetch(
                    self._http, node.endpoint, info.address, job_id, hop, self.account,
                    self.chain.chain_id, self.chain.market.address, timeout_s=max(timeout, 0.5),
                )  # fmt: skip
            except TranscriptUnavailable as exc:
                retry = exc.code != "TRANSCRIPT_MALFORMED" and attempt == 0
                if not retry or self._left(ends) < self.timing.retry_after_s + 2.0:
                    return exc
                log.info("job %s hop %d: %s; retrying", job_id, hop, exc.message)
                await asyncio.sleep(self.timing.retry_after_s)
        raise AssertionError("unreachable")

    def _recompute(
        self,
        job_id: str,
        runners: Sequence[SpanRunner],
        transcripts: Sequence[HopTranscript],
        ends: float,
    ) -> Finding | None:
        started: dict[int, tuple[float, int]] = {}

        def before(hop: int) -> None:
            work = sum(transcripts[hop].lengths) * (runners[hop].end - runners[hop].start)
            self._need(ends, work * self.timing.recompute_s, f"hop {hop} would not be recomputed")
            started[hop] = (time.monotonic(), work)

        def record(hop: int, result: HopCheck) -> None:
            began, work = started[hop]
            self.timing.learn(time.monotonic() - began, work)
            v = result.verdict
            self.ledger.record_check(
                job_id, hop, v.ok, v.reason, step=v.step, position=v.position, score=v.score,
                worst_score=v.worst_score, cpu_seconds=result.cpu_seconds, detail=v.describe(),
            )  # fmt: skip

        return check_computation(runners, transcripts, self.policy, before, record)

    async def _challenge(self, job: LedgerJob, finding: Finding, ends: float) -> str:
        evidence = Evidence(job.job_id, finding.hop, finding.reason, finding.step,
                            finding.position, finding.score, finding.detail)  # fmt: skip
        digest = self.ledger.record_evidence(evidence)
        try:
            self._need(ends, 0.0, f"hop {finding.hop} failed ({finding.reason}) too late")
        except WindowClosing as exc:
            return self._missed(job.job_id, exc.message)
        # The vote may have landed before a crash; never send a second transaction.
        if await self._settled_on_chain(job):
            return self.ledger.get(job.job_id).status
        try:
            tx = await asyncio.to_thread(
                self.chain.market.challenge,
                self.account, job.job_id, finding.hop, bytes.fromhex(digest[2:]),
            )  # fmt: skip
        except ContractRevert as exc:
            if exc.code in ("AlreadyVoted", "JobNotPending") and await self._settled_on_chain(job):
                return self.ledger.get(job.job_id).status
            if exc.code in ("ChallengeWindowClosed", "JobNotPending"):
                return self._missed(job.job_id, f"the challenge reverted: {exc.code}")
            raise
        if self.fault is not None:
            self.fault("after_challenge")
        self.ledger.record_challenge(job.job_id, finding.hop, digest, tx.tx_hash, tx.block)
        self.ledger.set_status(job.job_id, CHALLENGED, reason=finding.reason)
        self.report(
            f"verdict {job.job_id} challenged hop={finding.hop} reason={finding.reason} "
            f"tx={tx.tx_hash}"
        )
        return CHALLENGED

    # -- time ------------------------------------------------------------------------------

    def _left(self, ends: float) -> float:
        """Seconds until the window ends, less the time a challenge needs to be mined."""
        return ends - self.events.chain_time() - self.timing.tx_margin_s

    def _need(self, ends: float, seconds: float, what: str) -> None:
        left = self._left(ends)
        if left < seconds:
            raise WindowClosing(f"{what}: {max(left, 0):.1f} s left, about {seconds:.1f} s needed")

    def _missed(self, job_id: str, reason: str) -> str:
        log.warning("job %s missed: %s", job_id, reason)
        self.ledger.set_status(job_id, MISSED, reason=reason)
        self.report(f"verdict {job_id} missed reason={reason!r}")
        return MISSED


def _submitter_hop(fields: dict, route: Sequence[RouteHop]) -> int:
    hops = [i for i, h in enumerate(route) if h.address == fields["submitter"]]
    return hops[-1] if hops else len(route) - 1
