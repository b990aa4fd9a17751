"""Distinct types for the ids that cross process boundaries, and their strict parsers.

An address, a model id and a job id are all hex strings on the wire; giving each its own
type lets a type checker catch a model id passed where a job id belongs. Parsers raise
``ProtocolError`` naming the field, so a bad value is reported where it entered.
"""

from __future__ import annotations

import re
from typing import Any, NewType

from eth_utils.address import to_checksum_address

from sharedllm.errors import ProtocolError

Address = NewType("Address", str)
"""An EIP-55 checksummed 20-byte account address."""

ModelId = NewType("ModelId", str)
"""A model's manifest hash as registered on-chain: ``0x`` + 64 lowercase hex digits."""

JobId = NewType("JobId", str)
"""A job's EIP-712 digest: ``0x`` + 64 lowercase hex digits."""

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_BYTES32 = re.compile(r"^0x[0-9a-fA-F]{64}$")

ZERO_BYTES32 = "0x" + "00" * 32


def parse_address(value: Any, field: str = "address") -> Address:
    """Accept a 0x-prefixed 20-byte hex string in any case; reject bad mixed-case checksums."""
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise ProtocolError(f"{field}: expected a 0x-prefixed 20-byte hex address", field=field)
    checksummed = to_checksum_address(value)
    body = value[2:]
    mixed_case = body != body.lower() and body != body.upper()
    if mixed_case and value != checksummed:
        raise ProtocolError(f"{field}: address checksum does not match", field=field)
    return Address(checksummed)


def _parse_bytes32(value: Any, field: str, what: str) -> str:
    if isinstance(value, bytes) and len(value) == 32:
        return "0x" + value.hex()
    if not isinstance(value, str) or not _BYTES32.match(value):
        raise ProtocolError(f"{field}: expected {what} as 0x + 64 hex digits", field=field)
    return value.lower()


def parse_model_id(value: Any, field: str = "modelId") -> ModelId:
    """A non-zero bytes32 model id (the registry rejects zero, so do we)."""
    parsed = _parse_bytes32(value, field, "a model id")
    if parsed == ZERO_BYTES32:
        raise ProtocolError(f"{field}: model id must not be zero", field=field)
    return ModelId(parsed)


def parse_job_id(value: Any, field: str = "jobId") -> JobId:
    return JobId(_parse_bytes32(value, field, "a job id"))


def parse_uint(value: Any, field: str, bits: int = 256) -> int:
    """An unsigned integer that fits ``bits``, given as an int or a decimal string.

    Bools are refused even though Python treats them as ints: ``true`` for a token count is
    a client bug, not a 1.
    """
    if isinstance(value, bool):
        raise ProtocolError(f"{field}: expected an unsigned integer, got a boolean", field=field)
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit():
            raise ProtocolError(f"{field}: expected a decimal unsigned integer", field=field)
        value = int(value)
    if not isinstance(value, int):
        raise ProtocolError(f"{field}: expected an unsigned integer", field=field)
    if value < 0:
        raise ProtocolError(f"{field}: must not be negative", field=field)
    if value >= 1 << bits:
        raise ProtocolError(f"{field}: does not fit in uint{bits}", field=field)
    return value


def bytes32_to_bytes(value: str) -> bytes:
    return bytes.fromhex(value[2:])
