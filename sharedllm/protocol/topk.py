"""The compact commitment to a hop's output: the k largest-magnitude entries per position.

Hidden states have a few huge outliers, so the top-k by magnitude is both cheap to carry in
every receipt and hard to hit by accident: a verifier re-running the span compares its own
values at the committed indices, within a tolerance, instead of needing the full tensor.
"""

from __future__ import annotations

import struct

import numpy as np

from sharedllm.errors import ProtocolError

DEFAULT_K = 8
_HEADER = struct.Struct(">HI")  # k, positions
_ENTRY = np.dtype([("index", ">u4"), ("value", ">f4")])


def encode_topk(hidden: np.ndarray, k: int = DEFAULT_K) -> bytes:
    """Pack the top-k (by magnitude) entries of every position of ``hidden`` [..., T, H]."""
    rows = np.ascontiguousarray(hidden, dtype=np.float32).reshape(-1, hidden.shape[-1])
    k = min(k, rows.shape[1])
    idx = np.argpartition(-np.abs(rows), k - 1, axis=1)[:, :k]
    idx.sort(axis=1)
    entries = np.empty(idx.shape, dtype=_ENTRY)
    entries["index"] = idx
    entries["value"] = np.take_along_axis(rows, idx, axis=1)
    return _HEADER.pack(k, rows.shape[0]) + entries.tobytes()


def decode_topk(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Unpack to (indices [T, k] int64, values [T, k] float32)."""
    if len(data) < _HEADER.size:
        raise ProtocolError("top-k commitment is truncated", code="RECEIPT_MALFORMED")
    k, positions = _HEADER.unpack_from(data)
    body = data[_HEADER.size :]
    if k == 0 or len(body) != k * positions * _ENTRY.itemsize:
        raise ProtocolError(
            f"top-k commitment of {len(body)} bytes does not hold {positions}x{k} entries",
            code="RECEIPT_MALFORMED",
        )
    entries = np.frombuffer(body, dtype=_ENTRY).reshape(positions, k)
    return entries["index"].astype(np.int64), entries["value"].astype(np.float32)
