"""A verifier's recomputation of span 10:20 against honest and cheating nodes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nacl.signing import SigningKey

from sharedllm.protocol.receipts import Receipt, tensor_hash
from sharedllm.testing.calibrate import decode
from sharedllm.testing.cheats import CheatingRunner, CheatMode, cheat_schedule
from sharedllm.verifier.recompute import HopTranscript, check_hop

pytestmark = pytest.mark.model

JOB = bytes(range(32))
SHORT = 6  # steps: the prompt, then five tokens


def _receipts(inputs, outputs, key=None):
    key = key or SigningKey.generate()
    starts = np.cumsum([0] + [x.shape[0] for x in inputs])
    return [
        Receipt(
            JOB,
            1,
            step,
            int(starts[step]),
            x.shape[0],
            tensor_hash(x.astype("<f4").tobytes()),
            tensor_hash(y.astype("<f4").tobytes()),
        ).signed(key)
        for step, (x, y) in enumerate(zip(inputs, outputs, strict=True))
    ]


@pytest.fixture(scope="module")
def honest_outputs(span, hop_inputs):
    return decode(span, hop_inputs[:SHORT])


def test_honest_decode_passes_a_prefill_check_with_other_thread_counts(span, hop_inputs):
    inputs = hop_inputs[:SHORT]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        outputs = decode(span, inputs)
        torch.set_num_threads(2)
        check = check_hop(span, HopTranscript.from_arrays(inputs, outputs))
    finally:
        torch.set_num_threads(before)
    assert check.verdict.ok, check.verdict.describe()
    assert len(check.step_scores) == SHORT
    # Honest noise sits far below the threshold, not just under it.
    assert check.verdict.worst_score < check.verdict.threshold / 50


def test_honest_receipts_pass(span, hop_inputs, honest_outputs):
    inputs = hop_inputs[:SHORT]
    transcript = HopTranscript.from_arrays(
        inputs, honest_outputs, _receipts(inputs, honest_outputs)
    )
    assert check_hop(span, transcript).verdict.ok


def test_transcript_from_the_bytes_a_node_keeps(span, hop_inputs, honest_outputs):
    inputs = hop_inputs[:SHORT]
    transcript = HopTranscript.from_bytes(
        [x.tobytes() for x in inputs], [y.tobytes() for y in honest_outputs], 576
    )
    assert transcript.lengths == [x.shape[0] for x in inputs]
    assert check_hop(span, transcript).verdict.ok


@pytest.mark.parametrize("mode", list(CheatMode), ids=lambda m: m.value)
def test_each_cheat_is_caught_in_its_first_step(span, hop_inputs, other_job_inputs, mode):
    inputs = hop_inputs[:SHORT]
    cheat = CheatingRunner(span, mode, seed=3)
    if mode is CheatMode.REPLAY:
        decode(cheat, other_job_inputs)  # the earlier job whose activations it replays
    outputs = decode(cheat, inputs)
    verdict = check_hop(span, HopTranscript.from_arrays(inputs, outputs)).verdict
    assert not verdict.ok
    assert (verdict.step, verdict.reason) == (0, "output")
    # Both jobs open with the same chat template, whose replayed rows are right; a replay is
    # caught where the two prompts part.
    if mode is not CheatMode.REPLAY:
        assert verdict.position == 0
    assert verdict.score > 5 * verdict.threshold


def test_one_step_in_twenty_is_caught_and_named(span, hop_inputs):
    cheat = CheatingRunner(span, CheatMode.SKIP_LAYER, rate=0.05, seed=7)
    outputs = decode(cheat, hop_inputs)
    assert cheat.cheated_steps == cheat_schedule(0.05, 7, len(hop_inputs))
    assert cheat.cheated_steps, "pick a seed that cheats within the transcript"
    assert len(cheat.cheated_steps) < len(hop_inputs) // 5
    verdict = check_hop(span, HopTranscript.from_arrays(hop_inputs, outputs)).verdict
    assert not verdict.ok
    assert verdict.step == cheat.cheated_steps[0]
    assert verdict.position == 0


def test_a_tampered_position_is_named(span, hop_inputs, honest_outputs):
    inputs = hop_inputs[:SHORT]
    outputs = [y.copy() for y in honest_outputs]
    outputs[0][7] *= 1.01  # the prompt step, position 7
    verdict = check_hop(span, HopTranscript.from_arrays(inputs, outputs)).verdict
    assert (verdict.ok, verdict.step, verdict.position) == (False, 0, 7)
    outputs = [y.copy() for y in honest_outputs]
    outputs[4][0, 3] += 0.5
    verdict = check_hop(span, HopTranscript.from_arrays(inputs, outputs)).verdict
    assert (verdict.ok, verdict.step, verdict.position) == (False, 4, 0)


def test_receipt_claiming_more_positions_than_computed_is_caught(span, hop_inputs, honest_outputs):
    """A hop that signs for more positions than its transcript holds (to be paid for them)
    fails on the receipt, whatever its outputs."""
    inputs = hop_inputs[:SHORT]
    receipts = _receipts(inputs, honest_outputs)
    padded = receipts[2]
    receipts[2] = Receipt(
        JOB, 1, 2, padded.start_pos, padded.positions + 5, padded.input_hash, padded.output_hash
    )
    transcript = HopTranscript.from_arrays(inputs, honest_outputs, receipts)
    verdict = check_hop(span, transcript).verdict
    assert (verdict.ok, verdict.step, verdict.reason) == (False, 2, "receipt")


def test_transcript_that_is_not_what_was_signed_is_caught(span, hop_inputs, honest_outputs):
    """A node that signed one output and hands the verifier another cannot pass."""
    inputs = hop_inputs[:SHORT]
    receipts = _receipts(inputs, honest_outputs)
    recomputed_elsewhere = [y + np.float32(1e-7) * np.abs(y) for y in honest_outputs]
    transcript = HopTranscript.from_arrays(inputs, recomputed_elsewhere, receipts)
    verdict = check_hop(span, transcript).verdict
    assert (verdict.ok, verdict.step, verdict.reason) == (False, 0, "receipt")
