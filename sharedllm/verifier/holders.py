"""Who served each hop of an amended job, and one transcript per hop spliced from theirs.

A client that replaced a dead hop mid-answer (``protocol.amendment``) leaves two or more
nodes behind one route hop: the first served the steps before the amendment's position, the
replacement every step from there (it replayed the earlier ones to rebuild its cache, and its
transcript holds that replay as steps of its own). The job's record lists the route's hops,
then each replacement; a dispute names a record index.

The checks work on one transcript per route hop. For a replaced hop it is spliced step by
step: each step's rows and receipt from the node that served that step (the old holder's
steps from its own transcript, so that its receipts hash to the bytes they sign). The hop's
inputs are the previous hop's outputs throughout, so one prefill over the spliced inputs
checks every holder's outputs, and a fault found at a step is the fault of that step's
holder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from sharedllm.chain.market import Amended
from sharedllm.errors import ProtocolError
from sharedllm.protocol.receipts import Receipt
from sharedllm.verifier.recompute import HopTranscript


@dataclass(frozen=True)
class Holder:
    """One node behind a route hop, from ``from_position`` on; ``record`` is its index in
    the job's record (what a dispute names)."""

    record: int
    address: str
    pubkey: bytes
    from_position: int


def holders_of(
    route: Sequence[tuple[str, bytes]],
    amendments: Sequence[Amended],
    pubkey: Callable[[str], bytes],
) -> list[list[Holder]]:
    """Per route hop, its holders in order. ``route`` is (address, key) per hop;
    ``amendments`` are the job's ``JobAmended`` events; ``pubkey`` reads a replacement's
    registered receipt key."""
    holders = [[Holder(i, address, key, 0)] for i, (address, key) in enumerate(route)]
    for event in sorted(amendments, key=lambda e: e.index):
        holders[event.hop].append(
            Holder(event.index, event.replacement, pubkey(event.replacement), event.from_position)
        )
    return holders


def holder_at(holders: Sequence[Holder], position: int) -> Holder:
    """The holder that served the step starting at ``position``."""
    current = holders[0]
    for h in holders[1:]:
        if h.from_position <= position:
            current = h
    return current


def step_starts(transcript: HopTranscript) -> list[int]:
    starts, position = [], 0
    for length in transcript.lengths:
        starts.append(position)
        position += length
    return starts


def splice(holders: Sequence[Holder], transcripts: Sequence[HopTranscript]) -> HopTranscript:
    """One transcript of the route hop: each step from its holder's transcript. The last
    holder's transcript has every step (its replay included) and its receipt chains."""
    final = transcripts[-1]
    inputs: list[np.ndarray] = []
    outputs: list[np.ndarray] = []
    receipts: list[Receipt] = []
    for step, start in enumerate(step_starts(final)):
        i = holders.index(holder_at(holders, start))
        t = transcripts[i]
        if step >= len(t.inputs):
            raise ProtocolError(
                f"node {holders[i].address} holds no step {step} of the hop it served",
                code="TRANSCRIPT_MALFORMED",
            )
        inputs.append(t.inputs[step])
        outputs.append(t.outputs[step])
        receipts.extend(r for r in t.receipts if r.step == step)
    spliced = HopTranscript.from_arrays(inputs, outputs, receipts)
    return replace(spliced, chains=final.chains)
