"""An amended job's hop, spliced from the nodes that served it, through the same bookkeeping
checks as any hop; a fault found at a step is named by the record hop that served it.

Route hop 1 is served by its first node for steps 0 and 1 (positions 0..5) and by a
replacement from step 2 (position 6) on; the replacement's own transcript starts with its
replay of steps 0 and 1 (its own rows, with no receipt of its own), as a node keeps it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from nacl.signing import SigningKey
from test_service_checks import JOB, STEPS, Job, _receipt

from sharedllm.errors import ProtocolError
from sharedllm.verifier.checker import check_bookkeeping
from sharedllm.verifier.holders import Holder, splice
from sharedllm.verifier.inspection import Gathered
from sharedllm.verifier.recompute import HopTranscript

FROM_STEP = 2
FROM_POSITION = sum(STEPS[:FROM_STEP])
SPARE = "0x" + "ee" * 20


class AmendedJob(Job):
    """``Job`` with hop 1 handed to a replacement (record hop 3) from ``FROM_STEP`` on."""

    def __init__(self) -> None:
        super().__init__()
        self.spare_key = SigningKey.generate()
        rng = np.random.default_rng(7)
        for step in range(FROM_STEP, len(STEPS)):
            x, y = self.inputs[1][step], self.outputs[1][step]
            self.receipts[1][step] = _receipt(self.spare_key, 1, step, x, y)
        # The replacement replayed steps 0..FROM_STEP-1: the same inputs, its own rows
        # (bytes differ from the old holder's by float rounding), no receipt of its own.
        replayed = [y + rng.normal(0, 1e-6, y.shape).astype(np.float32) for y in self.outputs[1]]
        self.spare_transcript = HopTranscript.from_arrays(
            self.inputs[1],
            replayed[:FROM_STEP] + self.outputs[1][FROM_STEP:],
            self.receipts[1][FROM_STEP:],
        )
        # The old holder stopped after step FROM_STEP - 1.
        self.old_transcript = HopTranscript.from_arrays(
            self.inputs[1][:FROM_STEP], self.outputs[1][:FROM_STEP], self.receipts[1][:FROM_STEP]
        )
        self.route[1] = dataclasses.replace(
            self.route[1], later_keys=((FROM_POSITION, bytes(self.spare_key.verify_key)),)
        )
        self.holders = [
            [Holder(0, self.route[0].address, self.route[0].pubkey, 0)],
            [
                Holder(1, self.route[1].address, self.route[1].pubkey, 0),
                Holder(3, SPARE, bytes(self.spare_key.verify_key), FROM_POSITION),
            ],
            [Holder(2, self.route[2].address, self.route[2].pubkey, 0)],
        ]

    def spliced(self) -> list[HopTranscript]:
        plain = self.transcripts()
        hop1 = splice(self.holders[1], [self.old_transcript, self.spare_transcript])
        return [plain[0], hop1, plain[2]]

    def gathered(self, transcripts: list[HopTranscript]) -> Gathered:
        by_record = {0: transcripts[0], 1: self.old_transcript, 2: transcripts[2]}
        by_record[3] = self.spare_transcript
        return Gathered(JOB, {}, list(self.route), "m", transcripts, self.holders, by_record)


def test_the_spliced_hop_takes_each_step_from_its_holder() -> None:
    job = AmendedJob()
    hop1 = job.spliced()[1]
    assert hop1.lengths == STEPS
    for step in range(len(STEPS)):
        holder = job.old_transcript if step < FROM_STEP else job.spare_transcript
        assert np.array_equal(hop1.outputs[step], holder.outputs[step])
    assert list(hop1.receipts) == job.receipts[1]


def test_an_honest_amended_job_passes_bookkeeping() -> None:
    job = AmendedJob()
    assert job.check(job.spliced()) is None


def test_a_replacement_signing_with_the_old_holders_key_is_named() -> None:
    """Proof of concept: receipts for the replacement's steps signed with the old holder's key
    (as a node posing as the replacement would) fail against the replacement's key, and the
    finding names the replacement's record hop, not the old holder's."""
    job = AmendedJob()
    step = len(STEPS) - 1
    x, y = job.inputs[1][step], job.outputs[1][step]
    job.receipts[1][step] = _receipt(job.keys[1], 1, step, x, y)
    forged = list(job.spare_transcript.receipts)
    forged[-1] = job.receipts[1][step]
    job.spare_transcript = dataclasses.replace(job.spare_transcript, receipts=tuple(forged))
    spliced = job.spliced()
    finding = check_bookkeeping(JOB, job.route, spliced, job.commitment(), 2, None)
    assert finding is not None and (finding.hop, finding.reason) == (1, "receipt_signature")
    assert job.gathered(spliced).record_of(finding.hop, finding.step) == 3


def test_a_fault_before_the_amendment_names_the_old_holder() -> None:
    job = AmendedJob()
    gathered = job.gathered(job.spliced())
    assert gathered.record_of(1, 0) == 1
    assert gathered.record_of(1, FROM_STEP - 1) == 1
    assert gathered.record_of(1, FROM_STEP) == 3
    assert gathered.record_of(1, None) == 3, "no step: the hop's last holder"
    assert gathered.record_of(0, 2) == 0 and gathered.record_of(2, None) == 2
    assert gathered.hop_of(3) == 1 and gathered.hop_of(2) == 2


def test_a_holder_without_the_steps_it_served_cannot_be_spliced() -> None:
    job = AmendedJob()
    short = HopTranscript.from_arrays(job.inputs[1][:1], job.outputs[1][:1], job.receipts[1][:1])
    with pytest.raises(ProtocolError) as err:
        splice(job.holders[1], [short, job.spare_transcript])
    assert err.value.code == "TRANSCRIPT_MALFORMED"
