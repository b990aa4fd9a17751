"""A small but real transcript: two hops' signed receipt chains over random hidden states."""

from __future__ import annotations

import numpy as np
from nacl.signing import SigningKey

from sharedllm.protocol.receipts import Receipt, tensor_hash
from sharedllm.protocol.transcript_format import Transcript
from sharedllm.protocol.types import JobId

JOB_ID = JobId("0x" + "ab" * 32)
HIDDEN = 16
STEPS = (5, 1, 1)


def make_transcript(
    job_id: str = JOB_ID, hop: int = 1, steps: tuple[int, ...] = STEPS, seed: int = 0
) -> tuple[Transcript, list[np.ndarray], list[np.ndarray]]:
    """Hop ``hop``'s transcript with the receipts of hops 0..hop per step; the arrays are
    this hop's inputs and outputs per step."""
    rng = np.random.default_rng(seed)
    keys = [SigningKey(bytes([h + 1]) * 32) for h in range(hop + 1)]
    inputs, outputs, receipts = [], [], []
    for step, length in enumerate(steps):
        start = sum(steps[:step])
        data = rng.standard_normal((length, HIDDEN)).astype(np.float32)
        for h, key in enumerate(keys):
            out = rng.standard_normal((length, HIDDEN)).astype(np.float32)
            receipts.append(
                Receipt(
                    bytes.fromhex(job_id[2:]),
                    h,
                    step,
                    start,
                    length,
                    tensor_hash(data.tobytes()),
                    tensor_hash(out.tobytes()),
                ).signed(key)
            )
            if h == hop:
                inputs.append(data)
                outputs.append(out)
            data = out
    transcript = Transcript(
        JobId(job_id),
        hop,
        HIDDEN,
        tuple(steps),
        b"".join(x.tobytes() for x in inputs),
        b"".join(x.tobytes() for x in outputs),
        tuple(receipts),
    )
    return transcript, inputs, outputs
