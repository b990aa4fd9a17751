import pytest
from nacl.signing import SigningKey

from sharedllm.errors import ProtocolError
from sharedllm.protocol.receipts import (
    RECEIPT_BYTES,
    Receipt,
    check_chain,
    job_commitment,
    tensor_hash,
)

JOB = bytes(range(32))


def _receipts(keys, steps=2, lengths=(5, 1)):
    out = []
    for step in range(steps):
        data = f"input-{step}".encode()
        start = sum(lengths[:step])
        for hop, key in enumerate(keys):
            produced = f"out-{step}-{hop}".encode()
            receipt = Receipt(
                JOB, hop, step, start, lengths[step], tensor_hash(data), tensor_hash(produced)
            )
            out.append(receipt.signed(key))
            data = produced
    return out


def test_receipt_signature_round_trip_and_tamper():
    key = SigningKey.generate()
    receipt = _receipts([key], steps=1)[0]
    again = Receipt.from_hex(receipt.to_hex())
    assert again == receipt
    again.verify(bytes(key.verify_key))
    tampered = Receipt(**{**receipt.__dict__, "step": 5})
    with pytest.raises(ProtocolError) as err:
        tampered.verify(bytes(key.verify_key))
    assert err.value.code == "RECEIPT_BAD_SIGNATURE"
    with pytest.raises(ProtocolError):
        receipt.verify(bytes(SigningKey.generate().verify_key))


def test_chain_detects_the_hop_that_broke_it():
    keys = [SigningKey.generate() for _ in range(3)]
    receipts = _receipts(keys)
    check_chain(receipts, hops=3)
    broken = list(receipts)
    broken[4] = Receipt(**{**broken[4].__dict__, "input_hash": tensor_hash(b"other")})
    with pytest.raises(ProtocolError) as err:
        check_chain(broken, hops=3)
    assert err.value.code == "RECEIPT_CHAIN_BROKEN"
    assert err.value.details == {"step": 1, "hop": 1}
    with pytest.raises(ProtocolError) as err:
        check_chain(receipts[:-1], hops=3)
    assert err.value.code == "RECEIPT_MISSING"


def test_commitment_is_order_independent_but_content_sensitive():
    keys = [SigningKey.generate() for _ in range(2)]
    receipts = _receipts(keys)
    assert job_commitment(receipts) == job_commitment(list(reversed(receipts)))
    assert job_commitment(receipts) != job_commitment(receipts[:-1])


def test_a_receipt_has_one_size_whatever_the_step_covers():
    """Receipts ride in every frame's header: a prompt of 8,000 positions must not make them
    grow (a long prompt once overflowed the 64 KiB header limit)."""
    key = SigningKey.generate()
    short = Receipt(JOB, 0, 0, 0, 1, b"\x01" * 32, b"\x02" * 32).signed(key)
    long = Receipt(JOB, 0, 0, 0, 8192, b"\x01" * 32, b"\x02" * 32).signed(key)
    assert len(short.to_bytes()) == len(long.to_bytes()) == RECEIPT_BYTES < 200
    with pytest.raises(ProtocolError) as err:
        Receipt.from_bytes(long.to_bytes() + b"\x00")
    assert err.value.code == "RECEIPT_MALFORMED"
    with pytest.raises(ProtocolError) as err:
        Receipt.from_hex("ab" * 10_000)
    assert err.value.code == "RECEIPT_MALFORMED"


def test_chain_proves_the_positions_served_and_refuses_gaps_and_padding():
    keys = [SigningKey.generate() for _ in range(3)]
    receipts = _receipts(keys, steps=2, lengths=(5, 1))
    assert check_chain(receipts, hops=3) == 6
    padded = list(receipts)
    last = padded[-1]  # the last hop signs for more positions than the others ran
    padded[-1] = Receipt(**{**last.__dict__, "positions": 40})
    with pytest.raises(ProtocolError) as err:
        check_chain(padded, hops=3)
    assert err.value.code == "RECEIPT_CHAIN_BROKEN" and err.value.details == {"step": 1, "hop": 2}
    gap = [r for r in receipts if r.step == 1]  # step 1 without step 0 starts at 5, not 0
    with pytest.raises(ProtocolError) as err:
        check_chain(gap, hops=3)
    assert err.value.code == "RECEIPT_CHAIN_BROKEN"
