"""The tensor frame parser: what a node accepts from a peer and what it refuses."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from sharedllm.errors import FrameError
from sharedllm.protocol import frames
from sharedllm.protocol.frames import TensorFrame


def _raw(header: object, data: bytes) -> bytes:
    head = json.dumps(header).encode()
    return frames.MAGIC + struct.pack("<I", len(head)) + head + data


def test_round_trip_keeps_values_shape_and_meta():
    array = np.random.default_rng(0).standard_normal((1, 3, 8)).astype(np.float32)
    frame = frames.decode(frames.encode(TensorFrame.from_numpy(array, {"step": 2})))
    assert frame.shape == (1, 3, 8) and frame.meta == {"step": 2}
    assert np.array_equal(frame.to_numpy().reshape(frame.shape), array)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"SLT", "BAD_FRAME"),
        (b"XXXX" + struct.pack("<I", 2) + b"{}", "BAD_FRAME"),
        (frames.MAGIC + struct.pack("<I", 1000) + b"{}", "BAD_FRAME"),
        (_raw({"dtype": "float32", "shape": [1]}, b"\0" * 4), "BAD_FRAME"),
        (_raw({"dtype": "float32", "shape": [1], "meta": {}, "x": 1}, b"\0" * 4), "BAD_FRAME"),
        (_raw({"dtype": "float32", "shape": [1], "meta": []}, b"\0" * 4), "BAD_FRAME"),
        (_raw({"dtype": "int8", "shape": [4], "meta": {}}, b"\0" * 4), "BAD_DTYPE"),
        (_raw({"dtype": "float32", "shape": [0], "meta": {}}, b""), "BAD_SHAPE"),
        (_raw({"dtype": "float32", "shape": [True], "meta": {}}, b"\0" * 4), "BAD_SHAPE"),
        (_raw({"dtype": "float32", "shape": [2.0], "meta": {}}, b"\0" * 8), "BAD_SHAPE"),
        (_raw({"dtype": "float32", "shape": [2], "meta": {}}, b"\0" * 7), "BAD_LENGTH"),
        (_raw({"dtype": "float32", "shape": [2], "meta": {}}, b"\0" * 9), "BAD_LENGTH"),
    ],
)
def test_malformed_frames_are_refused_with_their_code(body, code):
    with pytest.raises(FrameError) as info:
        frames.decode(body)
    assert info.value.code == code


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused(dtype, value):
    array = np.ones((1, 4, 2), dtype=dtype)
    array[0, 3, 1] = value
    with pytest.raises(FrameError) as info:
        frames.decode(frames.encode(TensorFrame.from_numpy(array)))
    assert info.value.code == "NON_FINITE"


def test_bfloat16_nan_is_found_by_its_bit_pattern():
    finite = struct.pack("<2H", 0x3F80, 0xC000)  # 1.0, -2.0
    assert frames.decode(_raw({"dtype": "bfloat16", "shape": [2], "meta": {}}, finite))
    nan = struct.pack("<2H", 0x3F80, 0x7FC0)
    with pytest.raises(FrameError, match="NaN"):
        frames.decode(_raw({"dtype": "bfloat16", "shape": [2], "meta": {}}, nan))


def test_nan_in_header_json_is_refused():
    head = b'{"dtype":"float32","shape":[1],"meta":{"a":NaN}}'
    body = frames.MAGIC + struct.pack("<I", len(head)) + head + b"\0" * 4
    with pytest.raises(FrameError, match="NaN is not allowed"):
        frames.decode(body)
