"""Per-step receipts that each hop signs, and the job commitment built from them.

A receipt binds one hop's work on one step of one job: the hash of the exact input bytes it
received, the hash of the exact output bytes it produced, and a compact commitment to the
output's values (the top-k entries of every position, in the spirit of TOPLOC). Receipts
chain: hop i's ``output_hash`` is hop i+1's ``input_hash``, so a verifier that finds a
mismatch knows which hop produced it. The signature is ed25519 over a fixed binary layout,
with the public key the node declared in the registry.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from sharedllm.errors import ProtocolError

_DOMAIN = b"sharedllm/receipt/v1"
_FIXED = struct.Struct(">32sBI32s32sI")  # job id, hop, step, input hash, output hash, topk length
_SIGNATURE_BYTES = 64


@dataclass(frozen=True)
class Receipt:
    job_id: bytes
    hop: int
    step: int
    input_hash: bytes
    output_hash: bytes
    output_topk: bytes
    signature: bytes = b""

    def signing_bytes(self) -> bytes:
        return (
            _DOMAIN
            + _FIXED.pack(
                self.job_id,
                self.hop,
                self.step,
                self.input_hash,
                self.output_hash,
                len(self.output_topk),
            )
            + self.output_topk
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
        if len(data) < _FIXED.size + _SIGNATURE_BYTES:
            raise ProtocolError("receipt is truncated", code="RECEIPT_MALFORMED")
        job_id, hop, step, input_hash, output_hash, topk_len = _FIXED.unpack_from(data)
        end = _FIXED.size + topk_len
        if len(data) != end + _SIGNATURE_BYTES:
            raise ProtocolError(
                f"receipt length {len(data)} does not match its top-k length {topk_len}",
                code="RECEIPT_MALFORMED",
            )
        return cls(job_id, hop, step, input_hash, output_hash, data[_FIXED.size : end], data[end:])

    def to_hex(self) -> str:
        return self.to_bytes().hex()

    @classmethod
    def from_hex(cls, text: object) -> Receipt:
        if not isinstance(text, str):
            raise ProtocolError("receipt must be a hex string", code="RECEIPT_MALFORMED")
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


def check_chain(receipts: Sequence[Receipt], hops: int) -> None:
    """Check that the receipts form one unbroken chain per step across ``hops`` hops.

    Raises ``ProtocolError(RECEIPT_CHAIN_BROKEN)`` naming the first step and hop at which the
    chain breaks, or ``RECEIPT_MISSING`` if a hop's receipt for a step is absent.
    """
    by_step: dict[int, dict[int, Receipt]] = {}
    for receipt in receipts:
        by_step.setdefault(receipt.step, {})[receipt.hop] = receipt
    for step in sorted(by_step):
        row = by_step[step]
        for hop in range(hops):
            if hop not in row:
                raise ProtocolError(
                    f"no receipt from hop {hop} for step {step}", code="RECEIPT_MISSING"
                )
        for hop in range(1, hops):
            if row[hop].input_hash != row[hop - 1].output_hash:
                raise ProtocolError(
                    f"step {step}: hop {hop}'s input is not hop {hop - 1}'s output",
                    code="RECEIPT_CHAIN_BROKEN",
                    step=step,
                    hop=hop,
                )
