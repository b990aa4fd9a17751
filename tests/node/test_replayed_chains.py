"""What a replacement that became the route's last hop accepts as the receipt chains of the
steps it replayed: the client hands them over, and whatever the replacement takes it later
commits to on-chain as the job's receipts, so a forged chain must never get in."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey

from sharedllm.errors import ProtocolError
from sharedllm.node.paid_admission import check_replayed_chain
from sharedllm.protocol.receipts import Receipt, tensor_hash

JOB = b"\x33" * 32
INPUT = b"hop 1 output rows"
KEYS = [SigningKey.generate() for _ in range(3)]  # hop 0, hop 1, the dead last hop
SPARE = SigningKey.generate()  # the replacement: it signs nothing for replayed steps


def _chain(step: int = 4, start: int = 9, positions: int = 1) -> list[Receipt]:
    h0, h1, h2 = (tensor_hash(b"%d" % i) for i in range(3))
    return [
        Receipt(JOB, 0, step, start, positions, h0, h1).signed(KEYS[0]),
        Receipt(JOB, 1, step, start, positions, h1, tensor_hash(INPUT)).signed(KEYS[1]),
        Receipt(JOB, 2, step, start, positions, tensor_hash(INPUT), h2).signed(KEYS[2]),
    ]


def _key(hop: int, position: int) -> bytes:
    return bytes(KEYS[hop].verify_key)


def _check(chain: list[Receipt], step: int = 4, start: int = 9, positions: int = 1) -> None:
    check_replayed_chain(chain, JOB, 2, step, start, positions, tensor_hash(INPUT), _key)


def test_an_honest_chain_is_taken() -> None:
    _check(_chain())


def test_a_chain_signed_by_someone_else_is_refused() -> None:
    """Proof of concept: the old holder's receipt re-made and signed by another key (the
    client's, or the replacement's own) would let anyone put words in the dead hop's mouth."""
    chain = _chain()
    chain[2] = Receipt(**{**chain[2].__dict__, "signature": b""}).signed(SPARE)
    with pytest.raises(ProtocolError) as err:
        _check(chain)
    assert err.value.code == "RECEIPT_BAD_SIGNATURE"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"step": 5}, "RECEIPT_MISMATCH"),
        ({"start": 8}, "RECEIPT_MISMATCH"),
        ({"positions": 2}, "RECEIPT_MISMATCH"),
    ],
)
def test_a_chain_for_another_step_or_positions_is_refused(change: dict, code: str) -> None:
    """Proof of concept: a chain of another step, or over other positions, would make the
    commitment charge positions this hop never replayed."""
    with pytest.raises(ProtocolError) as err:
        _check(_chain(), **change)
    assert err.value.code == code


def test_a_broken_or_short_chain_is_refused() -> None:
    chain = _chain()
    with pytest.raises(ProtocolError) as err:
        _check(chain[:2])
    assert err.value.code == "RECEIPT_MISSING"
    broken = _chain()
    broken[1] = Receipt(JOB, 1, 4, 9, 1, broken[1].input_hash, b"\x00" * 32).signed(KEYS[1])
    with pytest.raises(ProtocolError) as err:
        _check(broken)
    assert err.value.code == "RECEIPT_CHAIN_BROKEN"
    with pytest.raises(ProtocolError) as err:
        check_replayed_chain(_chain(), JOB, 2, 4, 9, 1, tensor_hash(b"other rows"), _key)
    assert err.value.code == "RECEIPT_CHAIN_BROKEN"
