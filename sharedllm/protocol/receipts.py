"""Per-step receipts that each hop signs, and the job commitment built from them.

A receipt binds one hop's work on one step of one job: the positions the step covered
(``start_pos`` and ``positions``), the hash of the exact input bytes it received and the hash
of the exact output bytes it produced. Receipts chain: hop i's ``output_hash`` is hop i+1's
``input_hash``, so a verifier that finds a mismatch knows which hop produced it. The
signature is ed25519 over a fixed binary layout, with the public key the node declared in
the registry.

A receipt has one size whatever the step: it travels in every frame's header, next to the
tensor, so it must not grow with the prompt. The values themselves stay in the hop's
transcript, which the output hash pins byte for byte.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from sharedllm.errors import ProtocolError

_DOMAIN = b"sharedllm/receipt/v2"
# job id, hop, step, first position, positions, input hash, output hash
_FIXED = struct.Struct(">32sBIII32s32s")
_SIGNATURE_BYTES = 64
RECEIPT_BYTES = _FIXED.size + _SIGNATURE_BYTES


@dataclass(frozen=True)
class Receipt:
    job_id: bytes
    hop: int
    step: int
    start_pos: int
    positions: int
    input_hash: bytes
    output_hash: bytes
    signature: bytes = b""

    @property
    def end_pos(self) -> int:
        """The position after the step's last: the tokens served once this step was."""
        return self.start_pos + self.positions

    def signing_bytes(self) -> bytes:
        return _DOMAIN + _FIXED.pack(
            self.job_id,
            self.hop,
            self.step,
            self.start_pos,
            self.positions,
            self.input_hash,
            self.output_hash,
        )

    def signed(self, key: SigningKey) -> Receipt:
        signature = key.sign(self.signing_bytes()).signature
        return Receipt(**{**self.__dict__, "signature": signature})

    def verify(self, public_key: bytes) -> None:
        """Raise ``ProtocolError(RECEIPT_BAD_SIGNATURE)`` unless ``public_key`` signed this."""
        try:
            VerifyKey(public_key).verify(self.signing_bytes(), self.signature)
        except (BadSignatureError, ValueError, TypeError) as exc:
            raise ProtocolError(
                f"receipt for hop {self.hop} step {self.step} has a bad signature",
                code="RECEIPT_BAD_SIGNATURE",
            ) from exc

    def to_bytes(self) -> bytes:
        return self.signing_bytes()[len(_DOMAIN) :] + self.signature

    @classmethod
    def from_bytes(cls, data: bytes) -> Receipt:
        if len(data) != RECEIPT_BYTES:
            raise ProtocolError(
                f"receipt is {len(data)} bytes, expected {RECEIPT_BYTES}", code="RECEIPT_MALFORMED"
            )
        job_id, hop, step, start_pos, positions, input_hash, output_hash = _FIXED.unpack_from(data)
        if positions == 0:
            raise ProtocolError("receipt covers no position", code="RECEIPT_MALFORMED")
        return cls(
            job_id, hop, step, start_pos, positions, input_hash, output_hash, data[_FIXED.size :]
        )

    def to_hex(self) -> str:
        return self.to_bytes().hex()

    @classmethod
    def from_hex(cls, text: object) -> Receipt:
        if not isinstance(text, str) or len(text) > 2 * RECEIPT_BYTES + 2:
            raise ProtocolError(
                f"receipt must be a hex string of {RECEIPT_BYTES} bytes", code="RECEIPT_MALFORMED"
            )
        try:
            return cls.from_bytes(bytes.fromhex(text.removeprefix("0x")))
        except ValueError as exc:
            raise ProtocolError("receipt is not valid hex", code="RECEIPT_MALFORMED") from exc

    def digest(self) -> bytes:
        return hashlib.sha256(self.to_bytes()).digest()


def tensor_hash(raw: bytes) -> bytes:
    """The hash that receipts use for a tensor's exact bytes."""
    return hashlib.sha256(raw).digest()


def job_commitment(receipts: Sequence[Receipt]) -> bytes:
    """The 32-byte value committed on-chain: a hash over every receipt in (step, hop) order."""
    ordered = sorted(receipts, key=lambda r: (r.step, r.hop))
    h = hashlib.sha256(b"sharedllm/commitment/v1")
    for receipt in ordered:
        h.update(receipt.digest())
    return h.digest()


def check_chain(receipts: Sequence[Receipt], hops: int) -> int:
    """Check that the receipts form one unbroken chain per step across ``hops`` hops, over
    positions that follow on from 0 step by step; returns the positions they prove served.

    Raises ``ProtocolError(RECEIPT_CHAIN_BROKEN)`` naming the first step and hop at which the
    chain breaks, or ``RECEIPT_MISSING`` if a hop's receipt for a step is absent.
    """
    by_step: dict[int, dict[int, Receipt]] = {}
    for receipt in receipts:
        by_step.setdefault(receipt.step, {})[receipt.hop] = receipt
    position = 0
    for step in sorted(by_step):
        row = by_step[step]
        for hop in range(hops):
            if hop not in row:
                raise ProtocolError(
                    f"no receipt from hop {hop} for step {step}", code="RECEIPT_MISSING"
                )
        for hop in range(hops):
            if (row[hop].start_pos, row[hop].positions) != (position, row[0].positions):
                raise ProtocolError(
                    f"step {step}: hop {hop} signed positions {row[hop].start_pos}.."
                    f"{row[hop].end_pos - 1}, the chain is at {position}",
                    code="RECEIPT_CHAIN_BROKEN",
                    step=step,
                    hop=hop,
                )
            if hop and row[hop].input_hash != row[hop - 1].output_hash:
                raise ProtocolError(
                    f"step {step}: hop {hop}'s input is not hop {hop - 1}'s output",
                    code="RECEIPT_CHAIN_BROKEN",
                    step=step,
                    hop=hop,
                )
        position = row[0].end_pos
    return position


def proven_positions(job_id: bytes, hops: int, ordered: Sequence[Receipt]) -> int:
    """The positions a commitment's receipts prove, walked as the market walks them for an
    over-charge proof (``JobMarket._walk``): ``ordered`` as committed, in (step, hop) order;
    each step one receipt per hop, for this job, over the same positions, starting where
    the last step ended, each hop's input its predecessor's output, step numbers rising.
    The walk stops at the first receipt that breaks this; a step counts once its last hop
    is in. Signatures are not looked at: the submitter committed to these receipts."""
    proven = 0
    last: Receipt | None = None
    for k, r in enumerate(ordered):
        hop = k % hops if hops else -1
        if r.job_id != job_id or r.hop != hop:
            break
        if last is None or hop == 0:
            rising = last is None or r.step > last.step
            if hop != 0 or r.positions == 0 or r.start_pos != proven or not rising:
                break
        elif (r.step, r.start_pos, r.positions, r.input_hash) != (
            last.step,
            last.start_pos,
            last.positions,
            last.output_hash,
        ):
            break
        last = r
        if hop == hops - 1:
            proven = r.start_pos + r.positions
    return proven
