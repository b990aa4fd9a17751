"""A client's signed change to a paid job in flight: a new node for one hop, from a position on.

When a hop dies mid-answer the client keeps the job and its surviving hops' sessions, and
signs an amendment naming the replacement for the dead hop's span from the position where
the answer stopped. Only the replacement recomputes (it replays the positions before that
from the previous hop's saved outputs); the survivors are paid once for every position, the
dead hop for the positions before the amendment, and the replacement for every position up to
its own replacement or the job's end, its replay included. ``JobMarket.submitAmended``
settles such a job; its EIP-712 type is below.

Wire format: ``{"hop": int, "replacement": "0x..", "fromPosition": int, "signature": "0x.."}``
per amendment, in a list sorted by hop, then by position (as the contract takes them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak

from sharedllm.errors import ProtocolError
from sharedllm.protocol.job import market_typed_data
from sharedllm.protocol.types import Address, parse_address, parse_uint

MAX_AMENDMENTS = 16  # the JobMarket's limit

AMENDMENT_TYPE = [
    {"name": "jobHash", "type": "bytes32"},
    {"name": "hop", "type": "uint8"},
    {"name": "replacement", "type": "address"},
    {"name": "fromPosition", "type": "uint32"},
]
_FIELDS = {"hop", "replacement", "fromPosition", "signature"}


@dataclass(frozen=True)
class Amendment:
    """From position ``from_position`` on, route hop ``hop`` is served by ``replacement``."""

    hop: int
    replacement: Address
    from_position: int
    signature: bytes = b""

    def to_json(self) -> dict[str, Any]:
        return {
            "hop": self.hop,
            "replacement": self.replacement,
            "fromPosition": self.from_position,
            "signature": "0x" + self.signature.hex(),
        }

    def as_tuple(self) -> tuple[int, str, int]:
        """The ABI tuple ``JobMarket.submitAmended`` takes (without the signature)."""
        return (self.hop, self.replacement, self.from_position)

    def typed_data(self, job_hash: bytes, chain_id: int, market: str) -> dict[str, Any]:
        message = {
            "jobHash": job_hash,
            "hop": self.hop,
            "replacement": self.replacement,
            "fromPosition": self.from_position,
        }
        return market_typed_data("Amendment", AMENDMENT_TYPE, message, chain_id, market)


def amendment_digest(amendment: Amendment, job_hash: bytes, chain_id: int, market: str) -> bytes:
    """The digest ``JobMarket.hashAmendment`` returns."""
    signable = encode_typed_data(full_message=amendment.typed_data(job_hash, chain_id, market))
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def sign_amendment(
    amendment: Amendment, job_hash: bytes, account: Any, chain_id: int, market: str
) -> Amendment:
    """The amendment signed by ``account`` (the job's client), as an eth-account account."""
    signed = account.sign_typed_data(full_message=amendment.typed_data(job_hash, chain_id, market))
    return Amendment(
        amendment.hop, amendment.replacement, amendment.from_position, bytes(signed.signature)
    )


def amendment_signer(amendment: Amendment, job_hash: bytes, chain_id: int, market: str) -> str:
    """The address whose ECDSA signature this is, or "" when it is not a valid one."""
    if len(amendment.signature) != 65:
        return ""
    signable = encode_typed_data(full_message=amendment.typed_data(job_hash, chain_id, market))
    try:
        return str(Account.recover_message(signable, signature=amendment.signature))
    except Exception:  # eth-keys raises several types for malformed r/s/v
        return ""


def parse_amendments(value: Any, hops: int, field: str = "amendments") -> tuple[Amendment, ...]:
    """A wire list of amendments for a job of ``hops`` hops, in the contract's order."""
    if not isinstance(value, list) or len(value) > MAX_AMENDMENTS:
        raise ProtocolError(f"{field}: expected a list of at most {MAX_AMENDMENTS}", field=field)
    out: list[Amendment] = []
    for i, item in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(item, dict) or set(item) != _FIELDS:
            raise ProtocolError(f"{where}: expected exactly {sorted(_FIELDS)}", field=where)
        hop, position = item["hop"], item["fromPosition"]
        for name, number in (("hop", hop), ("fromPosition", position)):
            if not isinstance(number, int) or isinstance(number, bool):
                raise ProtocolError(f"{where}.{name}: expected an integer", field=where)
        if not 0 <= hop < hops:
            raise ProtocolError(f"{where}.hop: the job has hops 0..{hops - 1}", field=where)
        signature = item["signature"]
        if not isinstance(signature, str) or len(signature) > 2 + 2 * 65:
            raise ProtocolError(f"{where}.signature: expected 65 hex bytes", field=where)
        try:
            raw = bytes.fromhex(signature.removeprefix("0x"))
        except ValueError:
            raise ProtocolError(f"{where}.signature: expected hex", field=where) from None
        out.append(
            Amendment(
                hop,
                parse_address(item["replacement"], f"{where}.replacement"),
                parse_uint(position, f"{where}.fromPosition", 32),
                raw,
            )
        )
    check_order(out)
    return tuple(out)


def check_order(amendments: Sequence[Amendment]) -> None:
    """Sorted by hop, then by strictly rising position, each replacement new: the order the
    contract requires (it refuses the rest with ``InvalidAmendment``)."""
    seen: set[str] = set()
    for i, a in enumerate(amendments):
        if a.replacement in seen:
            raise ProtocolError(
                f"amendments[{i}]: {a.replacement} already replaces a hop", field="amendments"
            )
        seen.add(a.replacement)
        if i == 0:
            continue
        prev = amendments[i - 1]
        if (a.hop, a.from_position) <= (prev.hop, prev.from_position):
            raise ProtocolError(
                f"amendments[{i}]: out of order (sorted by hop, then position)",
                field="amendments",
            )


def holder(route: Sequence[str], amendments: Sequence[Amendment], hop: int, position: int) -> str:
    """The node that served route hop ``hop`` at ``position``."""
    node = route[hop]
    for a in amendments:
        if a.hop == hop and a.from_position <= position:
            node = a.replacement
    return node


def with_amendment(amendments: Sequence[Amendment], new: Amendment) -> tuple[Amendment, ...]:
    """The list with ``new`` in its place (sorted by hop, then position)."""
    return tuple(sorted([*amendments, new], key=lambda a: (a.hop, a.from_position)))


@dataclass(frozen=True)
class RecordHop:
    """One payee of an amended job, in the contract's record order: the route's hops, then
    each amendment's replacement."""

    node: str
    hop: int
    positions: int


def record_hops(
    route: Sequence[str], amendments: Sequence[Amendment], tokens_served: int
) -> list[RecordHop]:
    """Who is owed how many positions, as ``JobMarket.submitAmended`` records it."""
    entries = [RecordHop(node, i, tokens_served) for i, node in enumerate(route)]
    holder_index = {i: i for i in range(len(route))}
    for a in amendments:
        k = holder_index[a.hop]
        entries[k] = RecordHop(entries[k].node, a.hop, min(a.from_position, tokens_served))
        entries.append(RecordHop(a.replacement, a.hop, tokens_served))
        holder_index[a.hop] = len(entries) - 1
    return entries
