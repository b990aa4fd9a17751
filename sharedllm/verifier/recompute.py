"""Re-run one hop's span over its recorded inputs and compare with what the node committed.

The node ran its steps one at a time with a growing cache; the verifier concatenates the
inputs of every step and runs a single prefill, which costs a fraction of the node's work
(the decode steps are each a full pass over the span's weights for one position). The
outputs are split back into steps and scored per position by a ``TolerancePolicy``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from sharedllm.errors import ProtocolError
from sharedllm.model.span import SpanRunner
from sharedllm.protocol.receipts import Receipt, tensor_hash
from sharedllm.verifier.tolerance import TolerancePolicy, Verdict


@dataclass(frozen=True)
class HopTranscript:
    """One hop's work on one job: per step, the input it received and the output it sent,
    each [T_step, hidden] float32, in step order; and the receipts it signed, if any.

    ``chains`` is every receipt the hop held (hops 0..this, each step, in (step, hop)
    order), when the transcript came from a node: the upstream ones show what it was fed,
    and the last hop's chains are the job's whole commitment."""

    inputs: tuple[np.ndarray, ...]
    outputs: tuple[np.ndarray, ...]
    receipts: tuple[Receipt, ...] = field(default=())
    chains: tuple[Receipt, ...] = field(default=())

    @classmethod
    def from_arrays(
        cls,
        inputs: Sequence[np.ndarray | torch.Tensor],
        outputs: Sequence[np.ndarray | torch.Tensor],
        receipts: Sequence[Receipt] = (),
    ) -> HopTranscript:
        """Check shapes once, here, so the rest can trust them."""
        if not inputs:
            raise ProtocolError("transcript has no steps", code="TRANSCRIPT_MALFORMED")
        if len(inputs) != len(outputs):
            raise ProtocolError(
                f"transcript has {len(inputs)} inputs but {len(outputs)} outputs",
                code="TRANSCRIPT_MALFORMED",
                field="outputs",
            )
        ins = tuple(_rows(x, f"inputs[{i}]") for i, x in enumerate(inputs))
        outs = tuple(_rows(x, f"outputs[{i}]") for i, x in enumerate(outputs))
        width = ins[0].shape[1]
        for i, (a, b) in enumerate(zip(ins, outs, strict=True)):
            if a.shape[1] != width or a.shape != b.shape:
                raise ProtocolError(
                    f"step {i}: input {list(a.shape)} and output {list(b.shape)} do not match "
                    f"a [T, {width}] transcript",
                    code="TRANSCRIPT_MALFORMED",
                    field=f"outputs[{i}]",
                )
        return cls(ins, outs, tuple(receipts))

    @classmethod
    def from_bytes(
        cls,
        inputs: Sequence[bytes],
        outputs: Sequence[bytes],
        hidden_size: int,
        receipts: Sequence[Receipt] = (),
    ) -> HopTranscript:
        """From the raw little-endian float32 bytes a node keeps per step."""
        return cls.from_arrays(
            [_from_raw(b, hidden_size, f"inputs[{i}]") for i, b in enumerate(inputs)],
            [_from_raw(b, hidden_size, f"outputs[{i}]") for i, b in enumerate(outputs)],
            receipts,
        )

    @property
    def lengths(self) -> list[int]:
        return [x.shape[0] for x in self.inputs]


@dataclass(frozen=True)
class HopCheck:
    """The verdict, the worst score of every step (for calibration) and what it cost."""

    verdict: Verdict
    step_scores: tuple[float, ...]
    cpu_seconds: float


def recompute(runner: SpanRunner, transcript: HopTranscript) -> list[np.ndarray]:
    """The span's outputs for the transcript's inputs, from one prefill, split per step."""
    joined = torch.from_numpy(np.concatenate(transcript.inputs, axis=0)).unsqueeze(0)
    out = runner.prefill(joined)[0].to(torch.float32).numpy()
    bounds = np.cumsum(transcript.lengths)[:-1]
    return np.split(out, bounds, axis=0)


def check_hop(
    runner: SpanRunner, transcript: HopTranscript, policy: TolerancePolicy | None = None
) -> HopCheck:
    """Recompute the hop and judge it; the verdict names the first failing step and position.

    Receipts are checked first: if their hashes do not match the transcript's bytes, the
    transcript is not what the node signed, and recomputing it would prove nothing.
    """
    policy = policy or TolerancePolicy()
    began = time.process_time()
    ours = recompute(runner, transcript)
    cost = time.process_time() - began
    scores = [policy.position_scores(c, o) for c, o in zip(transcript.outputs, ours, strict=True)]
    step_scores = tuple(float(s.max()) for s in scores)
    worst = max(step_scores)
    failures: list[Verdict] = []
    for step, step_score in enumerate(scores):
        bad = np.flatnonzero(~policy.passes(step_score))
        if bad.size:
            pos = int(bad[0])
            failures.append(_fail(policy.threshold, worst, step, pos, step_score[pos], "output"))
            break
    failures.extend(_receipt_failures(transcript, ours, policy, worst))
    if failures:
        first = min(failures, key=lambda v: (v.step, v.position))
        return HopCheck(first, step_scores, cost)
    return HopCheck(Verdict(True, policy.threshold, worst), step_scores, cost)


def _receipt_failures(
    transcript: HopTranscript, ours: list[np.ndarray], policy: TolerancePolicy, worst: float
) -> list[Verdict]:
    out = []
    for receipt in transcript.receipts:
        step = receipt.step
        if not 0 <= step < len(ours):
            raise ProtocolError(
                f"receipt names step {step}, the transcript has {len(ours)} steps",
                code="TRANSCRIPT_MALFORMED",
                field="receipts",
            )
        committed_in = transcript.inputs[step].astype("<f4").tobytes()
        committed_out = transcript.outputs[step].astype("<f4").tobytes()
        if tensor_hash(committed_in) != receipt.input_hash:
            out.append(_fail(policy.threshold, worst, step, 0, float("inf"), "receipt"))
            continue
        if tensor_hash(committed_out) != receipt.output_hash:
            out.append(_fail(policy.threshold, worst, step, 0, float("inf"), "receipt"))
            continue
        if receipt.positions != ours[step].shape[0]:
            out.append(_fail(policy.threshold, worst, step, 0, float("inf"), "receipt"))
    return out


def _fail(threshold: float, worst: float, step: int, pos: int, score: float, why: str) -> Verdict:
    return Verdict(False, threshold, worst, step, pos, float(score), why)


def _rows(x: np.ndarray | torch.Tensor, what: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to(torch.float32).cpu().numpy()
    array = np.asarray(x, dtype=np.float32)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2 or array.shape[0] == 0:
        raise ProtocolError(
            f"{what} must be [T, hidden] or [1, T, hidden], got {list(array.shape)}",
            code="TRANSCRIPT_MALFORMED",
            field=what,
        )
    return np.ascontiguousarray(array)


def _from_raw(data: bytes, hidden_size: int, what: str) -> np.ndarray:
    width = hidden_size * 4
    if not data or len(data) % width:
        raise ProtocolError(
            f"{what} has {len(data)} bytes, not a whole number of {hidden_size}-float rows",
            code="TRANSCRIPT_MALFORMED",
            field=what,
        )
    return np.frombuffer(data, dtype="<f4").reshape(-1, hidden_size)
