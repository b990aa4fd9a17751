"""Tensor frames: how hidden states cross the wire.

A frame is one tensor plus a little metadata, laid out as::

    offset 0        4 bytes   magic  b"SLT1"
    offset 4        4 bytes   header length N, unsigned little-endian
    offset 8        N bytes   header, UTF-8 JSON: {"dtype": str, "shape": [int, ...], "meta": {}}
    offset 8 + N    rest      raw tensor bytes, little-endian, C order

The parser is strict because a frame comes from a peer we do not trust: unknown header keys,
an unknown dtype, a byte count that does not match the shape, or a NaN/inf value are refused
with a ``FrameError`` naming what is wrong. NaN and inf are refused so that a broken or
malicious hop cannot silently poison every later hop's cache.

This module knows bytes only (numpy for the finiteness check); it never imports torch.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sharedllm.errors import FrameError
from sharedllm.protocol import untrusted_json

MAGIC = b"SLT1"
CONTENT_TYPE = "application/x-sharedllm-frame"
MAX_HEADER_BYTES = 64 * 1024
MAX_DIMS = 8
MAX_DIM = 1 << 31

# dtype name -> (item size, unsigned view used to find NaN/inf, exponent mask)
_DTYPES: dict[str, tuple[int, str, int]] = {
    "float32": (4, "<u4", 0x7F800000),
    "float16": (2, "<u2", 0x7C00),
    "bfloat16": (2, "<u2", 0x7F80),
}
_PREFIX = struct.Struct("<4sI")


@dataclass(frozen=True)
class TensorFrame:
    dtype: str
    shape: tuple[int, ...]
    data: bytes
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def to_numpy(self) -> np.ndarray:
        """A read-only array over the frame's bytes (float32/float16 only)."""
        if self.dtype == "bfloat16":
            raise FrameError("bfloat16 has no numpy dtype", code="BAD_DTYPE", field="dtype")
        return np.frombuffer(self.data, dtype="<" + self.dtype[0] + str(_DTYPES[self.dtype][0]))

    @classmethod
    def from_numpy(cls, array: np.ndarray, meta: dict[str, Any] | None = None) -> TensorFrame:
        name = str(array.dtype)
        if name not in _DTYPES:
            raise FrameError(f"dtype {name} cannot be framed", code="BAD_DTYPE", field="dtype")
        data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        return cls(name, tuple(int(d) for d in array.shape), data, dict(meta or {}))


def encode(frame: TensorFrame) -> bytes:
    """Serialize a frame; the shape and byte count are checked so we never send a bad one."""
    _check_layout(frame.dtype, list(frame.shape), len(frame.data))
    header = json.dumps(
        {"dtype": frame.dtype, "shape": list(frame.shape), "meta": frame.meta},
        separators=(",", ":"),
        allow_nan=False,
    ).encode()
    return _PREFIX.pack(MAGIC, len(header)) + header + frame.data


def decode(body: bytes, *, allow_non_finite: bool = False) -> TensorFrame:
    """Parse and validate a frame received from a peer."""
    if len(body) < _PREFIX.size:
        raise FrameError("frame shorter than its 8-byte prefix", code="BAD_FRAME", field="prefix")
    magic, header_len = _PREFIX.unpack_from(body)
    if magic != MAGIC:
        raise FrameError("frame does not start with b'SLT1'", code="BAD_FRAME", field="magic")
    if header_len > MAX_HEADER_BYTES or _PREFIX.size + header_len > len(body):
        raise FrameError("frame header length out of range", code="BAD_FRAME", field="header")
    header = _parse_header(body[_PREFIX.size : _PREFIX.size + header_len])
    data = bytes(body[_PREFIX.size + header_len :])
    dtype, shape, meta = header["dtype"], header["shape"], header["meta"]
    _check_layout(dtype, shape, len(data))
    if not allow_non_finite:
        _check_finite(dtype, data)
    return TensorFrame(dtype, tuple(shape), data, meta)


def _parse_header(raw: bytes) -> dict[str, Any]:
    try:
        header = untrusted_json.loads(raw, max_bytes=MAX_HEADER_BYTES)
    except ValueError as exc:
        raise FrameError(
            f"frame header is not JSON: {exc}", code="BAD_FRAME", field="header"
        ) from None
    if not isinstance(header, dict) or set(header) != {"dtype", "shape", "meta"}:
        raise FrameError(
            "frame header must have exactly the keys dtype, shape, meta",
            code="BAD_FRAME",
            field="header",
        )
    if not isinstance(header["meta"], dict):
        raise FrameError("meta must be a JSON object", code="BAD_FRAME", field="meta")
    return header


def _check_layout(dtype: Any, shape: Any, nbytes: int) -> None:
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise FrameError(
            f"dtype {dtype!r} is not one of {sorted(_DTYPES)}", code="BAD_DTYPE", field="dtype"
        )
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= MAX_DIMS
        or not all(
            isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= MAX_DIM for d in shape
        )
    ):
        raise FrameError(
            f"shape must be 1..{MAX_DIMS} integers in 1..{MAX_DIM}", code="BAD_SHAPE", field="shape"
        )
    expected = math.prod(shape) * _DTYPES[dtype][0]
    if nbytes != expected:
        raise FrameError(
            f"shape {shape} of {dtype} needs {expected} bytes, got {nbytes}",
            code="BAD_LENGTH",
            field="data",
        )


def _check_finite(dtype: str, data: bytes) -> None:
    _, view, mask = _DTYPES[dtype]
    bits = np.frombuffer(data, dtype=view)
    # An all-ones exponent is exactly the set of NaN and +-inf encodings.
    if np.any((bits & mask) == mask):
        raise FrameError("tensor holds NaN or inf", code="NON_FINITE", field="data")
