"""The bookkeeping a verifier checks before recomputing: receipts, their chain, the commitment.

Transcripts are made in-process the way nodes make them (random rows stand in for hidden
states: nothing here recomputes), then tampered with as a cheater would.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from nacl.signing import SigningKey

from sharedllm.protocol.receipts import Receipt, job_commitment, tensor_hash
from sharedllm.verifier.checker import RouteHop, check_bookkeeping
from sharedllm.verifier.recompute import HopTranscript

JOB = "0x" + "5a" * 32
HIDDEN = 16
STEPS = [5, 1, 1, 1]  # a prompt, then one token per step


def _receipt(key: SigningKey, hop: int, step: int, x: np.ndarray, y: np.ndarray) -> Receipt:
    return Receipt(
        bytes.fromhex(JOB[2:]), hop, step, sum(STEPS[:step]), x.shape[0],
        tensor_hash(x.astype("<f4").tobytes()), tensor_hash(y.astype("<f4").tobytes()),
    ).signed(key)  # fmt: skip


class Job:
    """Three hops' transcripts of one job, with the keys that signed them."""

    def __init__(self, hops: int = 3, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.keys = [SigningKey.generate() for _ in range(hops)]
        self.route = [
            RouteHop("0x" + f"{i + 1:040x}", bytes(k.verify_key), 10 * i, 10 * i + 10)
            for i, k in enumerate(self.keys)
        ]
        self.inputs = [[] for _ in range(hops)]
        self.outputs = [[] for _ in range(hops)]
        self.receipts = [[] for _ in range(hops)]
        for step, length in enumerate(STEPS):
            x = rng.standard_normal((length, HIDDEN)).astype(np.float32)
            for hop in range(hops):
                y = rng.standard_normal((length, HIDDEN)).astype(np.float32)
                self.inputs[hop].append(x)
                self.outputs[hop].append(y)
                self.receipts[hop].append(_receipt(self.keys[hop], hop, step, x, y))
                x = y

    def all_receipts(self) -> list[Receipt]:
        return sorted((r for rs in self.receipts for r in rs), key=lambda r: (r.step, r.hop))

    def commitment(self) -> bytes:
        return job_commitment(self.all_receipts())

    def transcripts(self, chains: bool = True) -> list[HopTranscript]:
        out = []
        for hop in range(len(self.keys)):
            t = HopTranscript.from_arrays(self.inputs[hop], self.outputs[hop], self.receipts[hop])
            if chains:
                held = [r for r in self.all_receipts() if r.hop <= hop]
                t = dataclasses.replace(t, chains=tuple(held))
            out.append(t)
        return out

    def check(self, transcripts=None, commitment=None, submitter: int = 2, tokens_served=None):
        return check_bookkeeping(
            JOB, self.route, transcripts or self.transcripts(), commitment or self.commitment(),
            submitter, tokens_served,
        )  # fmt: skip


@pytest.mark.parametrize("chains", [True, False])
def test_an_honest_job_passes(chains: bool) -> None:
    job = Job()
    assert job.check(job.transcripts(chains)) is None


def test_a_step_the_last_hop_did_not_deliver_blames_no_one() -> None:
    """The client left before the last step's output reached it: the last hop billed and
    committed one step fewer than the hops before it ran. That is honest on every side."""
    job = Job()
    last = 2
    job.inputs[last].pop(), job.outputs[last].pop(), job.receipts[last].pop()
    committed = [r for r in job.all_receipts() if r.step < len(STEPS) - 1]
    transcripts = job.transcripts()
    held = tuple(r for r in committed if r.hop <= last)
    transcripts[last] = dataclasses.replace(transcripts[last], chains=held)
    assert job.check(transcripts, job_commitment(committed)) is None


def test_a_submitter_charging_more_positions_than_its_receipts_prove_is_named() -> None:
    """The attack: a last hop that submits the job's maxTokens instead of what it served
    was paid for 237 positions of a 44-position answer. The receipts prove the positions."""
    job = Job()
    served = sum(STEPS)
    assert job.check(tokens_served=served) is None
    assert job.check(tokens_served=served - 1) is None  # charging less hurts only itself
    finding = job.check(tokens_served=served + 193)
    assert (finding.hop, finding.reason) == (2, "overcharge")
    assert f"prove {served}" in finding.detail


def test_a_receipt_signed_with_another_key_names_its_hop() -> None:
    job = Job()
    x, y = job.inputs[1][2], job.outputs[1][2]
    job.receipts[1][2] = _receipt(SigningKey.generate(), 1, 2, x, y)
    finding = job.check(job.transcripts(chains=False))
    assert (finding.hop, finding.reason, finding.step) == (1, "receipt_signature", 2)


def test_a_transcript_that_is_not_what_the_receipt_signed_names_its_hop() -> None:
    job = Job()
    transcripts = job.transcripts()
    changed = list(transcripts[2].outputs)
    changed[3] = changed[3] + 1e-3
    transcripts[2] = dataclasses.replace(transcripts[2], outputs=tuple(changed))
    finding = job.check(transcripts)
    assert (finding.hop, finding.reason, finding.step) == (2, "receipt", 3)


def test_a_missing_receipt_names_its_hop() -> None:
    job = Job()
    transcripts = job.transcripts()
    transcripts[0] = dataclasses.replace(transcripts[0], receipts=transcripts[0].receipts[:-1])
    finding = job.check(transcripts)
    assert (finding.hop, finding.reason) == (0, "receipt_missing")


def test_a_middle_hop_that_re_signs_honest_outputs_after_the_fact_is_named() -> None:
    """The cheater served made-up rows, then recomputed honestly when asked for proof."""
    job = Job()
    committed = job.commitment()
    held = job.transcripts()  # what the hops hold, chains included, as served
    honest = np.ones((1, HIDDEN), dtype=np.float32)
    outputs = list(job.outputs[1])
    outputs[3] = honest
    receipts = list(job.receipts[1])
    receipts[3] = _receipt(job.keys[1], 1, 3, job.inputs[1][3], honest)
    held[1] = dataclasses.replace(held[1], outputs=tuple(outputs), receipts=tuple(receipts))

    finding = job.check(held, commitment=committed)
    assert (finding.hop, finding.reason, finding.step) == (1, "receipt_resigned", 3)

    # Without the submitter's chains, the broken link still names the upstream hop.
    plain = [dataclasses.replace(t, chains=()) for t in held]
    finding = job.check(plain, commitment=committed)
    assert (finding.hop, finding.reason, finding.step) == (1, "receipt_chain", 3)


@pytest.mark.parametrize("chains", [True, False])
def test_a_commitment_that_is_not_the_receipts_hash_names_the_submitter(chains: bool) -> None:
    job = Job()
    finding = job.check(job.transcripts(chains), commitment=b"\x01" * 32, submitter=2)
    assert (finding.hop, finding.reason) == (2, "commitment")


def _handed_over(job: Job, delivered: int) -> tuple[list[HopTranscript], bytes]:
    """The last hop died after ``delivered`` steps and the client handed those steps'
    receipts to hop 1, which submitted them. Hop 1's transcript holds chains up to itself
    for every step it ran; the dead hop's (recovered) transcript holds what it ran."""
    committed = [r for r in job.all_receipts() if r.step < delivered]
    transcripts = job.transcripts()
    last = len(transcripts) - 1
    transcripts[last] = HopTranscript.from_arrays(
        job.inputs[last][:delivered], job.outputs[last][:delivered], job.receipts[last][:delivered]
    )
    return transcripts, job_commitment(committed)


def test_a_job_handed_over_to_a_survivor_blames_no_one() -> None:
    """The crash once punished as cheating: the survivor's transcript lacks the dead hop's
    receipts, and it ran one step more than was delivered. Both are honest."""
    job = Job()
    transcripts, commitment = _handed_over(job, 3)
    served = sum(STEPS[:3])
    assert job.check(transcripts, commitment, submitter=1, tokens_served=served) is None


def test_a_handed_over_job_whose_dead_hop_lost_a_step_names_the_dead_hop() -> None:
    job = Job()
    transcripts, commitment = _handed_over(job, 3)
    last = transcripts[2]
    transcripts[2] = HopTranscript.from_arrays(
        job.inputs[2][:2], job.outputs[2][:2], list(last.receipts[:2])
    )
    finding = job.check(transcripts, commitment, submitter=1, tokens_served=sum(STEPS[:3]))
    assert (finding.hop, finding.reason) == (2, "receipt_missing")


def test_a_survivor_that_commits_what_no_hop_signed_is_named() -> None:
    job = Job()
    transcripts, _ = _handed_over(job, 3)
    finding = job.check(transcripts, b"\x01" * 32, submitter=1, tokens_served=sum(STEPS[:3]))
    assert (finding.hop, finding.reason) == (1, "commitment")


def test_a_survivor_charging_more_than_it_committed_is_an_overcharge() -> None:
    job = Job()
    transcripts, commitment = _handed_over(job, 2)
    finding = job.check(transcripts, commitment, submitter=1, tokens_served=sum(STEPS[:3]))
    assert (finding.hop, finding.reason) == (1, "overcharge")


def test_a_survivor_charging_less_than_it_committed_only_loses_the_difference() -> None:
    job = Job()
    transcripts, commitment = _handed_over(job, 3)
    assert job.check(transcripts, commitment, submitter=1, tokens_served=sum(STEPS[:2])) is None
