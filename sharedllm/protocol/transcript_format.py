"""A hop's job transcript as bytes: the same layout on the node's disk and on the wire.

::

    offset 0        4 bytes   magic b"SLTX"
    offset 4        8 bytes   frame length F, unsigned little-endian
    offset 12       F bytes   one tensor frame (protocol.frames), float32 [2, N, hidden]:
                              [0] every step's input rows, [1] every step's output rows,
                              steps concatenated in order (N = sum of the step lengths);
                              meta {"job_id": "0x..", "hop": i, "steps": [T0, T1, ...]}
    offset 12 + F   rest      the receipts the hop holds, back to back, in (step, hop)
                              order, each as a 4-byte big-endian length + Receipt.to_bytes()

Receipts live after the frame rather than in its JSON header because a frame header is
capped at 64 KiB and a long job's receipts (one per hop and step) are not.
The node writes this file once when the session closes and serves it as it lies, so what a
verifier reads is byte for byte what the node kept.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

from sharedllm.errors import ProtocolError
from sharedllm.protocol import frames
from sharedllm.protocol.frames import TensorFrame
from sharedllm.protocol.receipts import RECEIPT_BYTES, Receipt
from sharedllm.protocol.types import JobId, parse_job_id

MAGIC = b"SLTX"
CONTENT_TYPE = "application/x-sharedllm-transcript"
_PREFIX = struct.Struct("<4sQ")
_RECEIPT_LEN = struct.Struct(">I")
RECEIPT_BYTES_PER_STEP = RECEIPT_BYTES + _RECEIPT_LEN.size


@dataclass(frozen=True)
class Transcript:
    job_id: JobId
    hop: int
    hidden: int
    steps: tuple[int, ...]
    inputs: bytes  # float32 little-endian rows of every step, concatenated
    outputs: bytes
    receipts: tuple[Receipt, ...]  # every receipt the hop holds, (step, hop) order

    def step_bytes(self, which: str) -> list[bytes]:
        """The inputs or outputs cut back into one bytes object per step."""
        data = self.inputs if which == "inputs" else self.outputs
        row = self.hidden * 4
        out, offset = [], 0
        for length in self.steps:
            out.append(data[offset : offset + length * row])
            offset += length * row
        return out

    def own_receipts(self) -> list[Receipt]:
        """This hop's own receipt per step that has one, in step order."""
        return [r for r in self.receipts if r.hop == self.hop]


def worst_case_bytes(max_length: int, hidden: int, hops_held: int) -> int:
    """The largest transcript a session of ``max_length`` positions can leave: every position
    as an input and an output row, and in the worst case one step per position, each with
    the receipts of ``hops_held`` hops."""
    rows = max_length * hidden * 8
    receipts = hops_held * max_length * RECEIPT_BYTES_PER_STEP
    return rows + receipts + 4096


def encode(t: Transcript) -> bytes:
    total = sum(t.steps)
    frame = TensorFrame(
        "float32",
        (2, total, t.hidden),
        t.inputs + t.outputs,
        {"job_id": t.job_id, "hop": t.hop, "steps": list(t.steps)},
    )
    body = frames.encode(frame)
    ordered = sorted(t.receipts, key=lambda r: (r.step, r.hop))
    parts = [_PREFIX.pack(MAGIC, len(body)), body]
    for receipt in ordered:
        raw = receipt.to_bytes()
        parts += [_RECEIPT_LEN.pack(len(raw)), raw]
    return b"".join(parts)


def decode(data: bytes) -> Transcript:
    """Parse and check a transcript from a node we do not trust; errors name the field."""
    if len(data) < _PREFIX.size:
        raise _bad("transcript shorter than its 12-byte prefix", "prefix")
    magic, frame_len = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise _bad("transcript does not start with b'SLTX'", "magic")
    end = _PREFIX.size + frame_len
    if end > len(data):
        raise _bad("frame length runs past the end of the transcript", "frame")
    frame = frames.decode(data[_PREFIX.size : end])
    if frame.dtype != "float32" or len(frame.shape) != 3 or frame.shape[0] != 2:
        raise _bad(f"expected a float32 [2, N, hidden] frame, got {list(frame.shape)}", "shape")
    meta = frame.meta
    if set(meta) != {"job_id", "hop", "steps"}:
        raise _bad("meta must have exactly job_id, hop, steps", "meta")
    job_id = parse_job_id(meta["job_id"], "meta.job_id")
    hop = meta["hop"]
    if not _is_int(hop) or not 0 <= hop < 256:
        raise _bad("meta.hop: expected an integer 0..255", "meta.hop")
    steps = meta["steps"]
    if not isinstance(steps, list) or not steps or not all(_is_int(n) and n > 0 for n in steps):
        raise _bad("meta.steps: expected a non-empty list of positive integers", "meta.steps")
    if sum(steps) != frame.shape[1]:
        raise _bad(f"meta.steps sum to {sum(steps)}, the frame has {frame.shape[1]}", "meta.steps")
    half = len(frame.data) // 2
    receipts = _receipts(data, end, job_id, hop, len(steps))
    return Transcript(
        job_id, hop, frame.shape[2], tuple(steps), frame.data[:half], frame.data[half:], receipts
    )


def peek_hop(data: bytes) -> int | None:
    """The hop a stored transcript belongs to, read from its header alone; None if unreadable."""
    try:
        header_len = int.from_bytes(data[_PREFIX.size + 4 : _PREFIX.size + 8], "little")
        start = _PREFIX.size + 8
        hop = json.loads(data[start : start + header_len])["meta"]["hop"]
    except (ValueError, KeyError, TypeError):
        return None
    return hop if _is_int(hop) else None


def _receipts(data: bytes, offset: int, job_id: str, hop: int, steps: int) -> tuple[Receipt, ...]:
    out: list[Receipt] = []
    while offset < len(data):
        if offset + _RECEIPT_LEN.size > len(data):
            raise _bad("a receipt's length prefix is truncated", "receipts")
        (length,) = _RECEIPT_LEN.unpack_from(data, offset)
        offset += _RECEIPT_LEN.size
        if offset + length > len(data):
            raise _bad("a receipt runs past the end of the transcript", "receipts")
        receipt = Receipt.from_bytes(data[offset : offset + length])
        offset += length
        if "0x" + receipt.job_id.hex() != job_id or receipt.hop > hop or receipt.step >= steps:
            raise _bad(
                f"receipt for hop {receipt.hop} step {receipt.step} is not this transcript's",
                "receipts",
            )
        out.append(receipt)
    return tuple(out)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bad(message: str, field: str) -> ProtocolError:
    return ProtocolError(message, code="TRANSCRIPT_MALFORMED", field=field)
