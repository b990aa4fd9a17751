"""A paid session's steps on disk as they are served, so that a hop killed mid-answer can
still show the work it did.

A transcript is written whole when its session closes; a node killed mid-answer never gets
there, and a hop that cannot show its transcript is judged withholding once its response
window is over. So every step is appended to the job's journal before its output leaves for
the next hop: the step's input and output rows and the receipts this hop holds for it. On
start, a journal without a transcript becomes one (its complete steps; a record cut short by
the crash is dropped), and the job goes into the ledger as served, so that the hop can show
its work when a juror asks.

A recovered job is never submitted by this node: as the route's last hop it cannot know
which of its steps reached the client (a last hop bills only delivered steps), and the client
hands the delivered receipts to a surviving hop instead (``handoff``).

Journals outlive the process, not the machine: a step is written, not fsynced.

::

    b"SLJR", then records, each a 4-byte big-endian length and its body:
    first   JSON {"job", "signature", "hop", "hops", "hidden"}
    then    per step: step, first position, positions, receipt count (>IIIH), the input
            rows, the output rows (float32), the receipts (Receipt.to_bytes(), in hop order)
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sharedllm.errors import ProtocolError
from sharedllm.node.ledger import Ledger
from sharedllm.node.transcripts import TranscriptStore
from sharedllm.protocol.receipts import RECEIPT_BYTES, Receipt, job_commitment
from sharedllm.protocol.transcript_format import Transcript
from sharedllm.protocol.types import JobId, parse_job_id

log = logging.getLogger(__name__)

MAGIC = b"SLJR"
SUFFIX = ".steps"
_LEN = struct.Struct(">I")
_STEP = struct.Struct(">IIIH")


@dataclass(frozen=True)
class JournalHeader:
    job: dict[str, Any]
    signature: str
    hop: int
    hops: int
    hidden: int


def journal_path(store: TranscriptStore, job_id: str) -> Path:
    return store.root / f"{parse_job_id(job_id)}{SUFFIX}"


def append_step(
    store: TranscriptStore,
    job_id: str,
    header: JournalHeader,
    step: int,
    start_pos: int,
    positions: int,
    inputs: bytes,
    outputs: bytes,
    receipts: Sequence[Receipt],
) -> None:
    """Add one served step to the job's journal (creating it with its header)."""
    path = journal_path(store, job_id)
    body = _STEP.pack(step, start_pos, positions, len(receipts)) + inputs + outputs
    body += b"".join(r.to_bytes() for r in receipts)
    with open(path, "ab") as f:
        if f.tell() == 0:
            head = json.dumps(header.__dict__, sort_keys=True).encode()
            f.write(MAGIC + _LEN.pack(len(head)) + head)
        f.write(_LEN.pack(len(body)) + body)


def discard(store: TranscriptStore, job_id: str) -> None:
    journal_path(store, job_id).unlink(missing_ok=True)


def recover(store: TranscriptStore, ledger: Ledger) -> list[str]:
    """Turn every journal left by a crash into a transcript and a ledger row; returns the
    job ids recovered. A journal whose job already has both is simply removed."""
    recovered = []
    for path in sorted(store.root.glob(f"*{SUFFIX}")):
        job_id = path.name.removesuffix(SUFFIX)
        try:
            header, steps = _read(path.read_bytes())
        except (ProtocolError, ValueError, KeyError, TypeError, OSError) as exc:
            log.warning("journal %s is unreadable (%s); left as it is", path.name, exc)
            continue
        if steps and ledger.get(job_id) is None:
            _restore(store, ledger, JobId(job_id), header, steps)
            recovered.append(job_id)
            log.info("recovered %d steps of job %s from its journal", len(steps), job_id)
        path.unlink(missing_ok=True)
    return recovered


@dataclass(frozen=True)
class _Step:
    step: int
    start_pos: int
    positions: int
    inputs: bytes
    outputs: bytes
    receipts: tuple[Receipt, ...]


def _read(data: bytes) -> tuple[JournalHeader, list[_Step]]:
    if data[:4] != MAGIC:
        raise ProtocolError("not a step journal", field="magic")
    records = list(_records(data, 4))
    if not records:
        raise ProtocolError("no header", field="header")
    head = json.loads(records[0])
    header = JournalHeader(
        head["job"], head["signature"], int(head["hop"]), int(head["hops"]), int(head["hidden"])
    )
    steps = []
    row = header.hidden * 4
    for body in records[1:]:
        step, start, positions, count = _STEP.unpack_from(body)
        rows = positions * row
        offset = _STEP.size
        if len(body) != offset + 2 * rows + count * RECEIPT_BYTES:
            break  # a record that does not add up ends what can be trusted
        inputs, outputs = body[offset : offset + rows], body[offset + rows : offset + 2 * rows]
        offset += 2 * rows
        receipts = tuple(
            Receipt.from_bytes(body[offset + i * RECEIPT_BYTES : offset + (i + 1) * RECEIPT_BYTES])
            for i in range(count)
        )
        steps.append(_Step(step, start, positions, inputs, outputs, receipts))
    return header, steps


def _records(data: bytes, offset: int):
    """Length-prefixed records; a last one cut short by the crash is dropped."""
    while offset + _LEN.size <= len(data):
        (length,) = _LEN.unpack_from(data, offset)
        offset += _LEN.size
        if offset + length > len(data):
            return
        yield data[offset : offset + length]
        offset += length


def _restore(
    store: TranscriptStore, ledger: Ledger, job_id: JobId, h: JournalHeader, steps: list[_Step]
) -> None:
    steps = _in_order(steps)
    receipts = [r for s in steps for r in s.receipts]
    transcript = Transcript(
        job_id,
        h.hop,
        h.hidden,
        tuple(s.positions for s in steps),
        b"".join(s.inputs for s in steps),
        b"".join(s.outputs for s in steps),
        tuple(receipts),
    )
    store.write(transcript)  # before the ledger row: every job the ledger knows has one
    ledger.record_served(
        job_id,
        h.job,
        h.signature,
        h.hop,
        h.hops,
        sum(s.positions for s in steps),
        "0x" + job_commitment(receipts).hex(),
        [(r.step, r.hop, r.to_hex()) for r in receipts],
        recovered=True,
    )


def _in_order(steps: list[_Step]) -> list[_Step]:
    """Steps 0, 1, 2, ... as served; the run stops at the first gap (a step never written)."""
    by_step = {s.step: s for s in steps}
    out = []
    while len(out) in by_step:
        out.append(by_step[len(out)])
    return out
