"""Looking at one job: its route from the chain, its hops' transcripts, and the checks.

The challenger and the juror ask different questions of the same evidence. The challenger
asks "which hop, if any, is at fault?" (``Inspector.find_fault``, first fault in route order);
a juror asks "is the accused hop at fault?" (``Inspector.judge_hop``), which it must answer
even when another hop of the route cannot be reached.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

import aiohttp
import torch
from eth_account.signers.local import LocalAccount

from sharedllm.chain.connection import Chain
from sharedllm.chain.market import JobRecord
from sharedllm.errors import (
    PeerError,
    ProtocolError,
    TranscriptUnavailable,
    WindowClosing,
)
from sharedllm.model.device import hardware_class
from sharedllm.model.span import SpanRunner
from sharedllm.model.store import ModelStore
from sharedllm.peers.link_tls import LinkTrust
from sharedllm.verifier.checker import (
    Finding,
    RouteHop,
    check_bookkeeping,
    check_computation,
    check_own_receipts,
)
from sharedllm.verifier.events import ChainEvents
from sharedllm.verifier.hardware_rules import RULES, Rule, rule_for
from sharedllm.verifier.holders import Holder, holder_at, holders_of, splice, step_starts
from sharedllm.verifier.ledger import VerifierLedger
from sharedllm.verifier.recompute import HopCheck, HopTranscript
from sharedllm.verifier.tolerance import DEFAULT_THRESHOLD, TolerancePolicy
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
    """Span runners by (model, start, end), loaded once: shards are re-read only for layers
    no loaded span holds (a hop that ran part of a span is recomputed on a part of one)."""

    def __init__(self, store: ModelStore, device: torch.device | None = None) -> None:
        self.store = store
        self.device = device  # where recomputation runs (the CPU by default)
        self._runners: dict[tuple[str, int, int], SpanRunner] = {}

    def get(self, model_id: str, start: int, end: int) -> SpanRunner:
        key = (model_id, start, end)
        if key not in self._runners:
            holder = next(
                (
                    r
                    for (m, a, b), r in self._runners.items()
                    if m == model_id and a <= start < end <= b
                ),
                None,
            )
            self._runners[key] = (
                holder.part(start, end)
                if holder is not None
                else SpanRunner(self.store, self.store.manifest(model_id), start, end, self.device)
            )
        return self._runners[key]


@dataclass(frozen=True)
class Gathered:
    """A job's route and what each hop showed (a transcript, or why it could not)."""

    job_id: str
    record: JobRecord
    route: list[RouteHop]
    model_id: str
    fetched: list[Fetched]  # per route hop (an amended hop's spliced from its holders')
    holders: list[list[Holder]] = field(default_factory=list)  # per route hop
    by_record: dict[int, Fetched] = field(default_factory=dict)  # per record hop, as fetched

    @property
    def submitter_hop(self) -> int:
        hops = [i for i, h in enumerate(self.route) if h.address == self.record.submitter]
        return hops[-1] if hops else len(self.route) - 1

    @property
    def commitment(self) -> bytes:
        return self.record.commitment

    def unavailable(self, hop: int) -> TranscriptUnavailable | None:
        result = self.fetched[hop]
        return result if isinstance(result, TranscriptUnavailable) else None

    # -- record hops: what a dispute names (the route's hops, then any replacements) --------

    def record_of(self, hop: int, step: int | None) -> int:
        """The record hop that served route hop ``hop`` at ``step`` (its last holder when
        no step is named, or its first unavailable one when its transcript is missing)."""
        if not self.holders or len(self.holders[hop]) == 1:
            return hop
        holders = self.holders[hop]
        missing = [h for h in holders if isinstance(self.by_record.get(h.record), Exception)]
        if missing:
            return missing[0].record
        transcript = self.fetched[hop]
        if step is None or not isinstance(transcript, HopTranscript):
            return holders[-1].record
        starts = step_starts(transcript)
        return holder_at(holders, starts[min(step, len(starts) - 1)]).record

    def hop_of(self, record: int) -> int:
        """The route hop a record hop served."""
        for hop, holders in enumerate(self.holders):
            if any(h.record == record for h in holders):
                return hop
        return record

    def own_work(self, record: int) -> HopTranscript:
        """An amended hop's holder's transcript as it stands alone: every step it holds (a
        replacement's replay included), with its receipts for the positions it served."""
        own: HopTranscript = self.by_record[record]  # type: ignore[assignment]
        holders = self.holders[self.hop_of(record)]
        mine = next(h for h in holders if h.record == record)
        later = [h.from_position for h in holders if h.from_position > mine.from_position]
        until = min(later) if later else 1 << 32
        served = tuple(r for r in own.receipts if mine.from_position <= r.start_pos < until)
        return replace(own, receipts=served)

    def unavailable_record(self, record: int) -> TranscriptUnavailable | None:
        if not self.holders:
            return self.unavailable(record)
        result = self.by_record.get(record)
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
        rules: Sequence[Rule] = RULES,
    ) -> None:
        """``rules``: the threshold for each pair of hardware classes (the node's, as it
        registered; this verifier's, from ``runners.device``) and precision; ``policy``'s
        own threshold is the one for a pair of CPUs."""
        self.chain = chain
        self.account = account
        self.ledger = ledger
        self.runners = runners
        self.policy = policy
        self.fetch = fetch
        self.timing = timing or Timing()
        self.rules = rules
        self.hardware = hardware_class(runners.device or torch.device("cpu"))
        self.events = ChainEvents(chain)
        self.http: aiohttp.ClientSession | None = None
        self.links = LinkTrust()  # each node's https link pinned to its registered key

    # -- gathering -------------------------------------------------------------------------

    async def gather(self, job_id: str, record: JobRecord, ends: float) -> Gathered:
        """Fetch every hop's transcript at once (``ends``: the deadline the work must fit)."""
        route, model_id, holders = await asyncio.to_thread(self._route, job_id, record)
        self.need(ends, 1.0, "no time left to fetch the transcripts")
        each = [(hop, h) for hop, hs in enumerate(holders) for h in hs]
        fetched = await asyncio.gather(
            *(self._fetch(job_id, hop, h.address, ends) for hop, h in each)
        )
        by_record = {h.record: f for (_, h), f in zip(each, fetched, strict=True)}
        per_hop = [self._spliced(hs, by_record) for hs in holders]
        return Gathered(job_id, record, route, model_id, per_hop, holders, by_record)

    def _route(
        self, job_id: str, record: JobRecord
    ) -> tuple[list[RouteHop], str, list[list[Holder]]]:
        """The job's route hops with their keys and spans, its model, and who served each
        hop: spans from the record's layer counts (a route's spans are contiguous from layer
        0), keys and the model from the registry (``submitResult`` checked that every hop
        serves the job's model). An amended job's record continues with its replacements,
        which ``JobAmended`` events place (``holders``)."""
        replaced = self.chain.market.replacements_of(job_id) if record.hops else 0
        hops = len(record.hops) - replaced
        route, start, model_id = [], 0, ""
        for address, layers in zip(record.hops[:hops], record.layers[:hops], strict=True):
            node = self.chain.registry.get_node(address)
            model_id = model_id or node.model_id
            route.append(RouteHop(address, bytes.fromhex(node.pubkey[2:]), start, start + layers))
            start += layers
        events = (
            self.chain.market.amendments_of(job_id, self.chain.deployment.deploy_block)
            if replaced
            else []
        )
        holders = holders_of(
            [(h.address, h.pubkey) for h in route],
            events,
            lambda a: bytes.fromhex(self.chain.registry.get_node(a).pubkey[2:]),
        )
        route = [
            replace(r, later_keys=tuple((h.from_position, h.pubkey) for h in hs[1:]))
            for r, hs in zip(route, holders, strict=True)
        ]
        return route, model_id, holders

    @staticmethod
    def _spliced(holders: list[Holder], by_record: dict[int, Fetched]) -> Fetched:
        results = [by_record[h.record] for h in holders]
        missing = [r for r in results if isinstance(r, TranscriptUnavailable)]
        if missing:
            return missing[0]
        transcripts: list[HopTranscript] = results  # type: ignore[assignment]
        if len(transcripts) == 1:
            return transcripts[0]
        try:
            return splice(holders, transcripts)
        except ProtocolError as exc:
            return TranscriptUnavailable(exc.message, code="TRANSCRIPT_MALFORMED")

    async def _link(
        self, endpoint: str, job_id: str, hop: int, timeout: float
    ) -> ssl.SSLContext | None:
        """The TLS context pinned to the node's registered key (None for plain http); a
        link that cannot be made, or answers with another key, leaves the hop unavailable."""
        try:
            return await self.links.context(endpoint, timeout)
        except (PeerError, ValueError) as exc:  # LinkUntrusted among them
            raise TranscriptUnavailable(
                f"{endpoint}: {getattr(exc, 'message', exc)}",
                node_url=endpoint, job_id=job_id, hop=hop,
            ) from None  # fmt: skip

    async def _fetch(self, job_id: str, hop: int, address: str, ends: float) -> Fetched:
        """One hop's transcript, with one retry for a refusal or a miss (a transcript may
        be written a moment after the commitment); the error itself if it stays unavailable."""
        node = await asyncio.to_thread(self.chain.registry.get_node, address)
        self.links.expect(node.endpoint, bytes.fromhex(node.pubkey[2:]))
        for attempt in (0, 1):
            timeout = min(self.timing.fetch_timeout_s, self.left(ends))
            try:
                link = await self._link(node.endpoint, job_id, hop, max(timeout, 0.5))
                return await self.fetch(
                    self.http, node.endpoint, address, job_id, hop, self.account,
                    self.chain.chain_id, self.chain.market.address, timeout_s=max(timeout, 0.5),
                    link=link,
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
        """The first hop at fault: unavailable, then bookkeeping, then recomputation; named
        by its record hop (for an amended job, the node that served the failing step)."""
        finding = await self._route_fault(evidence, ends)
        if finding is None:
            return None
        record = finding.record
        if record is None:
            record = evidence.record_of(finding.hop, finding.step)
        return replace(finding, hop=record, record=None)

    async def _route_fault(self, evidence: Gathered, ends: float) -> Finding | None:
        job_id = evidence.job_id
        for hop in range(len(evidence.route)):
            missing = evidence.unavailable(hop)
            if missing is not None:
                # A replaced hop whose old holder is gone: the holders that did answer are
                # recomputed on their own first, since a wrong output outweighs a missing one.
                for holder in evidence.holders[hop] if evidence.holders else ():
                    if evidence.unavailable_record(holder.record) is None:
                        own = evidence.own_work(holder.record)
                        found = await asyncio.to_thread(
                            self._recompute, evidence, [(hop, own)], ends
                        )
                        if found is not None:
                            return replace(found, record=holder.record)
                reason = missing.code.lower()
                self.ledger.record_check(job_id, hop, False, reason, detail=missing.message)
                return Finding(hop, reason, detail=missing.message)
        transcripts: list[HopTranscript] = list(evidence.fetched)  # type: ignore[arg-type]
        finding = await asyncio.to_thread(
            check_bookkeeping, job_id, evidence.route, transcripts, evidence.commitment,
            evidence.submitter_hop, evidence.record.tokens_served,
        )  # fmt: skip
        if finding is not None:
            self.ledger.record_check(job_id, finding.hop, False, finding.reason,
                                     step=finding.step, detail=finding.detail)  # fmt: skip
            return finding
        pairs = list(enumerate(transcripts))
        return await asyncio.to_thread(self._recompute, evidence, pairs, ends)

    # -- the juror's question --------------------------------------------------------------

    async def judge_hop(self, evidence: Gathered, accused: int, ends: float) -> Finding | None:
        """A fault of record hop ``accused`` (its receipts, the job's bookkeeping where it
        names this hop, its recomputed outputs), or None if it checks out. The caller decides
        what an unavailable accused hop means (it may be restarting).

        For an amended job the accused is one holder of a route hop: the hop is judged on
        its spliced transcript and a fault counts only at a step the accused served; if
        another holder of the hop cannot be reached, the accused's own transcript is
        recomputed alone (a replacement's holds its replay, so it is whole)."""
        hop = evidence.hop_of(accused)
        if not evidence.holders or len(evidence.holders[hop]) == 1:
            return await self._judge_route_hop(evidence, hop, ends)
        missing = evidence.unavailable_record(accused)
        if missing is not None:
            return Finding(accused, missing.code.lower(), detail=missing.message)
        if evidence.unavailable(hop) is None:
            finding = await self._judge_route_hop(evidence, hop, ends)
            if finding is None or evidence.record_of(finding.hop, finding.step) != accused:
                return None
            return replace(finding, hop=accused)
        own = evidence.own_work(accused)
        found = await asyncio.to_thread(self._recompute, evidence, [(hop, own)], ends)
        return None if found is None else replace(found, hop=accused)

    async def _judge_route_hop(
        self, evidence: Gathered, accused: int, ends: float
    ) -> Finding | None:
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
                evidence.submitter_hop, evidence.record.tokens_served,
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
        """Recompute the given (route index, transcript) pairs in order; the first fault.
        A hop whose hardware class this verifier has no measured rule against is left
        unjudged (recorded so), never accused on a guessed threshold."""
        route = evidence.route
        policies: dict[int, TolerancePolicy] = {}
        for h, _ in pairs:
            policy = self._policy_for(evidence, route[h].address)
            if isinstance(policy, str):
                log.info("job %s hop %d not recomputed: %s", evidence.job_id, h, policy)
                self.ledger.record_check(evidence.job_id, h, False, "no_rule", detail=policy)
            else:
                policies[h] = policy
        pairs = [(h, t) for h, t in pairs if h in policies]
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

        per_hop = [policies[h] for h in hops]
        finding = check_computation(runners, chosen, self.policy, before, record, per_hop)
        return None if finding is None else replace(finding, hop=hops[finding.hop])

    def _policy_for(self, evidence: Gathered, node: str) -> TolerancePolicy | str:
        """The tolerance policy for ``node``'s work, from the pair of hardware classes and
        the model's precision; a string saying why when no rule is measured for the pair."""
        registered = self.chain.registry.get_node(node).hardware or "cpu"
        precision = self.runners.store.manifest(evidence.model_id).dtype
        rule = rule_for(registered, self.hardware, precision, self.rules)
        if rule.threshold is None:
            return (
                f"no measured rule for a {registered} node and a {self.hardware} verifier "
                f"({rule.basis})"
            )
        if rule.threshold == DEFAULT_THRESHOLD:
            return self.policy
        return TolerancePolicy(rule.threshold, self.policy.outlier_channels)

    # -- time ------------------------------------------------------------------------------

    def left(self, ends: float) -> float:
        """Seconds until ``ends``, less the time a transaction needs to be mined."""
        return ends - self.events.chain_time() - self.timing.tx_margin_s

    def need(self, ends: float, seconds: float, what: str) -> None:
        left = self.left(ends)
        if left < seconds:
            raise WindowClosing(f"{what}: {max(left, 0):.1f} s left, about {seconds:.1f} s needed")
