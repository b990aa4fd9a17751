"""Judge one job from its hops' transcripts: which hop, if any, must be challenged.

Two kinds of fault, checked in this order because the first is cheap and makes the second
meaningful:

1. Bookkeeping. Every hop's receipts must be its own (signed with the key it registered),
   one per step, and hash to the transcript's bytes. The submitter's receipt chains must
   hash to the on-chain commitment (else the submitter is at fault), and every hop's
   receipts must be the committed ones. Receipts chain: hop i's signed output is hop i+1's
   signed input. A broken link is blamed on the upstream hop: the downstream hop checked
   the upstream receipt before it signed its own (``PaidAdmission.receipts``), so a
   mismatch now means the upstream hop presents a receipt other than the one it gave then,
   which is what a cheater does when it re-signs honest outputs after the fact.
2. Computation. Each hop's span is re-run over its recorded inputs as one prefill and
   compared with its committed outputs (``recompute.check_hop``); the first failing hop in
   route order is named.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from sharedllm.errors import ProtocolError
from sharedllm.model.span import SpanRunner
from sharedllm.protocol.receipts import Receipt, job_commitment, tensor_hash
from sharedllm.verifier.recompute import HopCheck, HopTranscript, check_hop
from sharedllm.verifier.tolerance import TolerancePolicy


@dataclass(frozen=True)
class RouteHop:
    """What the verifier knows of a hop from the chain: who, with which key, which layers."""

    address: str
    pubkey: bytes
    start: int
    end: int
    # An amended job's later holders of this hop: (first position, receipt key) each.
    later_keys: tuple[tuple[int, bytes], ...] = ()

    def key_at(self, position: int) -> bytes:
        """The receipt key of the node that served this hop at ``position``."""
        key = self.pubkey
        for start, later in self.later_keys:
            if start <= position:
                key = later
        return key


@dataclass(frozen=True)
class Finding:
    """The hop to challenge and why; ``reason`` is a stable word kept in the evidence."""

    hop: int
    reason: str
    step: int | None = None
    position: int | None = None
    score: float | None = None
    detail: str = ""
    record: int | None = None  # the record hop at fault, when already known (amended jobs)


def check_bookkeeping(
    job_id: str,
    route: Sequence[RouteHop],
    transcripts: Sequence[HopTranscript],
    commitment: bytes,
    submitter_hop: int,
    tokens_served: int | None = None,
) -> Finding | None:
    """The first hop whose receipts do not add up, or None if the paperwork is sound.

    ``tokens_served`` is what the submitter claimed on-chain: it may charge for no more
    positions than the committed receipts prove (``receipts.check_chain``)."""
    job = bytes.fromhex(job_id.removeprefix("0x"))
    for hop, (info, transcript) in enumerate(zip(route, transcripts, strict=True)):
        finding = check_own_receipts(job, hop, info, transcript)
        if finding is not None:
            return finding
    # A hop may hold steps the job does not charge for: the last hop bills only the steps
    # it delivered, so an earlier hop can have run one more. Bookkeeping covers what the
    # job committed; the extra step is honest work, recomputed like the rest.
    if submitter_hop != len(route) - 1:
        return _handed_over(route, transcripts, commitment, submitter_hop, tokens_served)
    committed = _committed_steps(transcripts[submitter_hop])
    finding = _fewer_steps(transcripts, committed, "the job committed")
    if finding is not None:
        return finding
    transcripts = [replace(t, receipts=t.receipts[:committed]) for t in transcripts]
    finding = _against_commitment(route, transcripts, commitment, submitter_hop)
    if finding is not None:
        return finding
    finding = _links(route, transcripts, committed)
    if finding is not None:
        return finding
    receipts = [r for t in transcripts for r in t.receipts]
    if job_commitment(receipts) != commitment:
        return Finding(
            submitter_hop,
            "commitment",
            detail="the on-chain commitment is not the hash of the hops' receipts",
        )
    own = transcripts[submitter_hop].receipts
    return _overcharge(submitter_hop, tokens_served, own[-1].end_pos if own else 0)


def _handed_over(
    route: Sequence[RouteHop],
    transcripts: Sequence[HopTranscript],
    commitment: bytes,
    submitter_hop: int,
    tokens_served: int | None,
) -> Finding | None:
    """Bookkeeping of a job its last hop did not submit: it died mid-answer and the client
    handed the receipts of the steps it got answers for to an earlier hop (``handoff``).
    That hop holds the chains only up to itself; the commitment covers the first steps of
    every hop's own receipts. If no such prefix hashes to it, a hop holding fewer steps than
    the job charges is at fault for the missing ones (the dead hop, if its steps were lost),
    and otherwise the submitter committed what no hop signed."""
    own = transcripts[submitter_hop].receipts
    charged = len(own) if tokens_served is None else sum(
        1 for r in own if r.end_pos <= tokens_served
    )  # fmt: skip
    # The longest prefix that every hop holds and that hashes to the commitment is what was
    # committed; charging past it is the submitter's over-charge, found below.
    committed = _committed_prefix(transcripts, commitment)
    if committed == 0:
        finding = _fewer_steps(transcripts, charged, "the job charges")
        if finding is not None:
            return finding
        return Finding(
            submitter_hop, "commitment",
            detail="the on-chain commitment is no prefix of the hops' receipts",
        )  # fmt: skip
    transcripts = [replace(t, receipts=t.receipts[:committed]) for t in transcripts]
    finding = _links(route, transcripts, committed)
    if finding is not None:
        return finding
    return _overcharge(submitter_hop, tokens_served, own[committed - 1].end_pos)


def _committed_prefix(transcripts: Sequence[HopTranscript], commitment: bytes) -> int:
    """The most steps whose receipts, every hop's own, hash to the commitment (0: none)."""
    held = min(len(t.receipts) for t in transcripts)
    for n in range(held, 0, -1):
        if job_commitment([r for t in transcripts for r in t.receipts[:n]]) == commitment:
            return n
    return 0


def _fewer_steps(transcripts: Sequence[HopTranscript], steps: int, what: str) -> Finding | None:
    for hop, transcript in enumerate(transcripts):
        if len(transcript.receipts) < steps:
            return Finding(
                hop, "receipt_missing", detail=f"{len(transcript.receipts)} steps, {what} {steps}"
            )
    return None


def _overcharge(submitter_hop: int, tokens_served: int | None, proven: int) -> Finding | None:
    if tokens_served is not None and tokens_served > proven:
        return Finding(
            submitter_hop, "overcharge",
            detail=f"charged {tokens_served} positions, the receipts prove {proven}",
        )  # fmt: skip
    return None


def _links(
    route: Sequence[RouteHop], transcripts: Sequence[HopTranscript], steps: int
) -> Finding | None:
    """Hop i's signed output must be hop i+1's signed input, step after step."""
    for step in range(steps):
        for hop in range(len(route) - 1):
            sent = transcripts[hop].receipts[step].output_hash
            received = transcripts[hop + 1].receipts[step].input_hash
            if sent != received:
                return Finding(
                    hop, "receipt_chain", step,
                    detail=f"hop {hop + 1} signed another input than hop {hop}'s output",
                )  # fmt: skip
    return None


def committed_receipts(
    transcripts: Sequence[HopTranscript], commitment: bytes, submitter_hop: int
) -> list[Receipt]:
    """The receipts the commitment hashes, in (step, hop) order, once bookkeeping passed:
    the submitter's chains when it is the last hop, else the longest prefix of every hop's
    own receipts that hashes to the commitment (a job handed over to a survivor)."""
    last = len(transcripts) - 1
    if submitter_hop == last and transcripts[last].chains:
        return sorted(transcripts[last].chains, key=lambda r: (r.step, r.hop))
    n = _committed_prefix(transcripts, commitment)
    return sorted((r for t in transcripts for r in t.receipts[:n]), key=lambda r: (r.step, r.hop))


def _committed_steps(submitter: HopTranscript) -> int:
    """The steps the submitter's commitment covers: those of its receipt chains when the
    transcript came from a node, else every step it holds."""
    if submitter.chains:
        return len({r.step for r in submitter.chains})
    return len(submitter.receipts)


def _against_commitment(
    route: Sequence[RouteHop],
    transcripts: Sequence[HopTranscript],
    commitment: bytes,
    submitter_hop: int,
) -> Finding | None:
    """With the submitter's receipt chains at hand, name the hop whose receipts are not the
    committed ones (a re-signed transcript), or the submitter if the chains are not what it
    committed. Without them (transcripts made in-process) the caller's union check decides."""
    committed = transcripts[submitter_hop].chains
    if not committed:
        return None
    if job_commitment(committed) != commitment:
        return Finding(
            submitter_hop,
            "commitment",
            detail="the on-chain commitment is not the hash of the submitter's receipts",
        )
    for hop in range(len(route)):
        theirs = sorted((r for r in committed if r.hop == hop), key=lambda r: r.step)
        if list(transcripts[hop].receipts) != theirs:
            pairs = zip(transcripts[hop].receipts, theirs, strict=False)
            step = next((i for i, (a, b) in enumerate(pairs) if a != b), None)
            return Finding(
                hop, "receipt_resigned", step,
                detail="the transcript's receipts are not the ones committed on-chain",
            )  # fmt: skip
    return None


def check_own_receipts(job: bytes, hop: int, info: RouteHop, t: HopTranscript) -> Finding | None:
    """Hop ``hop``'s receipts alone: one per step, for this job, hop and step, over the
    transcript's positions, signed with its key and hashing to its bytes."""
    if len(t.receipts) != len(t.inputs):
        return Finding(
            hop, "receipt_missing", detail=f"{len(t.receipts)} receipts for {len(t.inputs)} steps"
        )
    position = 0
    for step, receipt in enumerate(t.receipts):
        if receipt.job_id != job or receipt.hop != hop or receipt.step != step:
            return Finding(hop, "receipt_mismatch", step, detail="receipt for another job/hop/step")
        if (receipt.start_pos, receipt.positions) != (position, t.inputs[step].shape[0]):
            return Finding(
                hop, "receipt_positions", step,
                detail=f"receipt signs positions {receipt.start_pos}+{receipt.positions}, the "
                f"transcript has {t.inputs[step].shape[0]} at {position}",
            )  # fmt: skip
        position = receipt.end_pos
        try:
            receipt.verify(info.key_at(receipt.start_pos))
        except ProtocolError:
            return Finding(hop, "receipt_signature", step, detail="not signed by the hop's key")
        if not _hashes_match(receipt, t, step):
            return Finding(hop, "receipt", step, detail="transcript bytes differ from the receipt")
    return None


def _hashes_match(receipt: Receipt, t: HopTranscript, step: int) -> bool:
    got_in = tensor_hash(t.inputs[step].astype("<f4").tobytes())
    got_out = tensor_hash(t.outputs[step].astype("<f4").tobytes())
    return got_in == receipt.input_hash and got_out == receipt.output_hash


def check_computation(
    runners: Sequence[SpanRunner],
    transcripts: Sequence[HopTranscript],
    policy: TolerancePolicy,
    before_hop: Callable[[int], None] | None = None,
    on_check: Callable[[int, HopCheck], None] | None = None,
    per_hop: Sequence[TolerancePolicy] | None = None,
) -> Finding | None:
    """Recompute hop after hop; the first failing hop, or None if every hop passes.

    ``before_hop`` may raise to stop early (the challenge window is closing); ``on_check``
    sees every hop's result, for the ledger. ``per_hop`` gives each hop a policy of its own
    (its hardware pair's threshold) in place of ``policy``.
    """
    for hop, (runner, transcript) in enumerate(zip(runners, transcripts, strict=True)):
        if before_hop is not None:
            before_hop(hop)
        try:
            result = check_hop(runner, transcript, per_hop[hop] if per_hop else policy)
        except ProtocolError as exc:  # e.g. a receipt naming a step the transcript lacks
            return Finding(hop, "malformed", detail=exc.message)
        if on_check is not None:
            on_check(hop, result)
        verdict = result.verdict
        if not verdict.ok:
            return Finding(
                hop, verdict.reason or "output", verdict.step, verdict.position, verdict.score,
                detail=verdict.describe(),
            )  # fmt: skip
    return None


def commitment_preimage(receipts: Sequence[Receipt]) -> bytes:
    """The bytes the job's commitment hashes, as the market's over-charge proof takes them:
    173 bytes per receipt in (step, hop) order."""
    ordered = sorted(receipts, key=lambda r: (r.step, r.hop))
    return b"".join(r.to_bytes() for r in ordered)
