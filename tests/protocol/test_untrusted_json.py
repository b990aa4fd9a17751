"""JSON from peers is refused by size, depth and number size before Python's parser recurses."""

from __future__ import annotations

import sys

import pytest

from sharedllm.errors import FrameError
from sharedllm.protocol import frames, untrusted_json
from sharedllm.protocol.frames import TensorFrame


def test_deep_nesting_is_refused_without_recursing():
    import eth_account  # noqa: F401 -- its py_ecc raises the recursion limit, as in a node

    assert sys.getrecursionlimit() >= 99_000  # plain json.loads would overflow the C stack
    body = b"[" * 99_000 + b"]" * 99_000
    with pytest.raises(untrusted_json.JsonLimitError, match="nested 99000 deep"):
        untrusted_json.loads(body)


def test_brackets_inside_strings_do_not_count():
    text = b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"{{{{{{{{{{{{{{{{{{{{"}'
    assert untrusted_json.nesting_depth(text) == 1
    assert untrusted_json.loads(text)["a"].startswith("[[[")
    assert untrusted_json.loads(b"[" * 32 + b"]" * 32) is not None
    with pytest.raises(ValueError):
        untrusted_json.loads(b"[" * 33 + b"]" * 33)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"n": ' + b"9" * 3000 + b"}", "integer of 3000 digits"),
        (b'{"n": NaN}', "NaN is not allowed"),
        (b'{"n": Infinity}', "Infinity is not allowed"),
        (b"\xff\xfe", "not JSON"),
        (b'{"a": 1', "not JSON"),
        (b" " * (2 << 20), "over the limit"),
    ],
)
def test_limits_name_what_broke_them(body, why):
    with pytest.raises(untrusted_json.JsonLimitError, match=why):
        untrusted_json.loads(body)


def test_a_uint256_still_parses():
    assert untrusted_json.loads(b'{"v": ' + str(2**256 - 1).encode() + b"}")["v"] == 2**256 - 1


def test_a_frame_whose_meta_nests_deeply_or_whose_shape_is_huge_is_a_frame_error():
    good = frames.encode(TensorFrame("float32", (1, 1, 2), bytes(8), {"step": 0}))
    meta = b'"meta":{"x":' + b"[" * 5000 + b"]" * 5000 + b"}"
    header = b'{"dtype":"float32","shape":[1,1,2],' + meta + b"}"
    with pytest.raises(FrameError) as err:
        frames.decode(frames.MAGIC + len(header).to_bytes(4, "little") + header + bytes(8))
    assert err.value.code == "BAD_FRAME"
    big = b'{"dtype":"float32","shape":[' + b"9" * 70 + b',1],"meta":{}}'
    with pytest.raises(FrameError) as err:
        frames.decode(frames.MAGIC + len(big).to_bytes(4, "little") + big + bytes(8))
    assert err.value.code == "BAD_SHAPE"
    assert frames.decode(good).shape == (1, 1, 2)
