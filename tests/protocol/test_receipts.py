import numpy as np
import pytest
from nacl.signing import SigningKey

from sharedllm.errors import ProtocolError
from sharedllm.protocol.receipts import Receipt, check_chain, job_commitment, tensor_hash
from sharedllm.protocol.topk import decode_topk, encode_topk

JOB = bytes(range(32))


def _receipts(keys, steps=2):
    out = []
    for step in range(steps):
        data = f"input-{step}".encode()
        for hop, key in enumerate(keys):
            produced = f"out-{step}-{hop}".encode()
            out.append(
                Receipt(JOB, hop, step, tensor_hash(data), tensor_hash(produced), b"topk").signed(
                    key
                )
            )
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


def test_topk_keeps_the_largest_magnitudes():
    rng = np.random.default_rng(0)
    hidden = rng.standard_normal((1, 3, 64)).astype(np.float32)
    hidden[0, 1, 10] = -500.0
    idx, values = decode_topk(encode_topk(hidden, k=4))
    assert idx.shape == (3, 4)
    assert 10 in idx[1]
    assert values[1][list(idx[1]).index(10)] == np.float32(-500.0)
    with pytest.raises(ProtocolError):
        decode_topk(encode_topk(hidden)[:-1])
