"""The signed job: EIP-712 typed data that a client signs and the JobMarket verifies.

Wire format (``Job.to_json`` / ``Job.from_json``): a JSON object with exactly the EIP-712
field names below. Every number is a JSON integer, never a string: Python's ``json``
keeps integers of any size exactly, and refusing strings means ``"7"`` can never sneak
into the signed data (eth-account's encoder would quietly accept it and sign something
the parser never checked). JavaScript clients must build the body with BigInt-safe
serialisation for values above 2**53.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak

from sharedllm.errors import JobRejected, ProtocolError
from sharedllm.protocol.types import (
    Address,
    JobId,
    ModelId,
    parse_address,
    parse_model_id,
    parse_uint,
)

DOMAIN_NAME = "SharedLLM JobMarket"
DOMAIN_VERSION = "1"

JOB_TYPE = [
    {"name": "modelId", "type": "bytes32"},
    {"name": "route", "type": "address[]"},
    {"name": "spanStarts", "type": "uint16[]"},
    {"name": "spanEnds", "type": "uint16[]"},
    {"name": "maxTokens", "type": "uint32"},
    {"name": "maxPricePerToken", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint64"},
    {"name": "client", "type": "address"},
]
_FIELDS = [f["name"] for f in JOB_TYPE]


@dataclass(frozen=True)
class Job:
    """One prepaid inference job; its EIP-712 digest is its id on-chain."""

    model_id: ModelId
    route: tuple[Address, ...]
    span_starts: tuple[int, ...]
    span_ends: tuple[int, ...]
    max_tokens: int
    max_price_per_token: int
    nonce: int
    deadline: int
    client: Address

    def __post_init__(self) -> None:
        # Constructing a Job in code goes through the same checks as parsing one, and
        # comes out in the same normal form (tuples, checksummed addresses).
        parsed = Job.from_json(self.to_json())
        for name in self.__dataclass_fields__:
            object.__setattr__(self, name, getattr(parsed, name))

    @classmethod
    def from_json(cls, body: Any) -> Job:
        """Parse a wire job strictly; raises ProtocolError naming the first bad field."""
        if not isinstance(body, dict):
            raise ProtocolError("job: expected a JSON object", field="job")
        unknown = sorted(set(body) - set(_FIELDS))
        if unknown:
            raise ProtocolError(f"job: unknown field {unknown[0]!r}", field=unknown[0])
        missing = [name for name in _FIELDS if name not in body]
        if missing:
            raise ProtocolError(f"{missing[0]}: missing", field=missing[0])
        route = _list(body, "route", lambda v, f: parse_address(v, f))
        starts = _list(body, "spanStarts", lambda v, f: _strict_uint(v, f, 16))
        ends = _list(body, "spanEnds", lambda v, f: _strict_uint(v, f, 16))
        if not (len(route) == len(starts) == len(ends)):
            raise ProtocolError(
                "route: route, spanStarts and spanEnds must have equal lengths", field="route"
            )
        job = object.__new__(cls)
        values = {
            "model_id": parse_model_id(body["modelId"], "modelId"),
            "route": route,
            "span_starts": starts,
            "span_ends": ends,
            "max_tokens": _strict_uint(body["maxTokens"], "maxTokens", 32),
            "max_price_per_token": _strict_uint(body["maxPricePerToken"], "maxPricePerToken"),
            "nonce": _strict_uint(body["nonce"], "nonce"),
            "deadline": _strict_uint(body["deadline"], "deadline", 64),
            "client": parse_address(body["client"], "client"),
        }
        for name, value in values.items():
            object.__setattr__(job, name, value)
        return job

    def to_json(self) -> dict[str, Any]:
        return {
            "modelId": self.model_id,
            "route": list(self.route),
            "spanStarts": list(self.span_starts),
            "spanEnds": list(self.span_ends),
            "maxTokens": self.max_tokens,
            "maxPricePerToken": self.max_price_per_token,
            "nonce": self.nonce,
            "deadline": self.deadline,
            "client": self.client,
        }

    def as_tuple(self) -> tuple[Any, ...]:
        """The job as the ABI tuple ``JobMarket`` functions take."""
        return (
            bytes.fromhex(self.model_id[2:]),
            list(self.route),
            list(self.span_starts),
            list(self.span_ends),
            self.max_tokens,
            self.max_price_per_token,
            self.nonce,
            self.deadline,
            self.client,
        )

    def typed_data(self, chain_id: int, market: str) -> dict[str, Any]:
        """The full EIP-712 message, as ``eth_signTypedData_v4`` and eth-account take it."""
        return market_typed_data("Job", JOB_TYPE, self.to_json(), chain_id, market)

    def hop_layers(self) -> list[int]:
        return [end - start for start, end in zip(self.span_starts, self.span_ends, strict=True)]

    def check_route(self) -> None:
        """Check 1 of the JobMarket: non-empty, contiguous spans starting at layer 0."""
        well_formed = bool(self.route)
        next_start = 0
        for start, end in zip(self.span_starts, self.span_ends, strict=True):
            if start != next_start or end <= start:
                well_formed = False
                break
            next_start = end
        if not well_formed:
            raise JobRejected(
                "route is empty or its spans are not contiguous from 0", code="InvalidRoute"
            )


def market_typed_data(
    primary: str, fields: list[dict[str, str]], message: dict[str, Any], chain_id: int, market: str
) -> dict[str, Any]:
    """An EIP-712 message of type ``primary`` in the JobMarket's domain."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            primary: fields,
        },
        "primaryType": primary,
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": parse_address(market, "market"),
        },
        "message": message,
    }


def _strict_uint(value: Any, field: str, bits: int = 256) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(f"{field}: expected a JSON integer", field=field)
    return parse_uint(value, field, bits)


def _list(body: dict[str, Any], field: str, parse: Any) -> tuple[Any, ...]:
    value = body[field]
    if not isinstance(value, list):
        raise ProtocolError(f"{field}: expected a list", field=field)
    return tuple(parse(item, f"{field}[{i}]") for i, item in enumerate(value))


def job_digest(job: Job, chain_id: int, market: str) -> bytes:
    """The EIP-712 digest the contract's ``hashJob`` returns; it is the job's id."""
    signable = encode_typed_data(full_message=job.typed_data(chain_id, market))
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def job_id(job: Job, chain_id: int, market: str) -> JobId:
    return JobId("0x" + job_digest(job, chain_id, market).hex())


def sign_job(job: Job, account: Any, chain_id: int, market: str) -> bytes:
    """Sign as ``job.client`` with an eth-account ``LocalAccount``; returns r || s || v."""
    if account.address != job.client:
        raise ProtocolError("client: the signing account is not the job's client", field="client")
    signed = account.sign_typed_data(full_message=job.typed_data(chain_id, market))
    return bytes(signed.signature)


def recover_job_signer(job: Job, signature: bytes, chain_id: int, market: str) -> Address:
    """The address that produced ``signature`` over this job (any address, valid or not)."""
    if not isinstance(signature, bytes) or len(signature) != 65:
        raise ProtocolError("signature: expected 65 bytes", field="signature")
    signable = encode_typed_data(full_message=job.typed_data(chain_id, market))
    try:
        return Address(Account.recover_message(signable, signature=signature))
    except Exception as exc:  # eth-keys raises several types for malformed r/s/v
        raise ProtocolError(
            f"signature: cannot recover a signer ({exc})", field="signature"
        ) from exc
