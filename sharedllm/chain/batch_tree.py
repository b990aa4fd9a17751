"""Batches as the BatchSettlement contract hashes them: leaves, one Merkle tree per client,
entries and their credits.

A batch holds one entry per client, sorted by client address. An entry's leaves are the
client's jobs sorted by job hash, each leaf's ``index`` its position; the tree is
OpenZeppelin's (pairs hashed commutatively, an odd node carried up unchanged), its leaves
double-hashed. An entry credits every node of its jobs' routes with the pay and reward its
jobs owe it, sorted by node address. ``tests/vectors`` pins these hashes against the
contract's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode
from eth_keys.exceptions import BadSignature
from eth_keys.main import KeyAPI
from eth_utils.crypto import keccak

from sharedllm.errors import ProtocolError
from sharedllm.protocol.job import Job, job_digest
from sharedllm.protocol.types import (
    Address,
    bytes32_to_bytes,
    parse_address,
    parse_job_id,
    parse_uint,
)

MAX_ENTRIES = 256
MAX_ENTRY_JOBS = 64
MAX_CREDITS = 64

_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_LEAF_TYPES = ["uint32", "bytes32", "bytes32", "uint32", "bytes32", "uint256[]"]
ENTRY_TYPE = "(address,bytes32,uint32,(address,uint256,uint256)[])"
_SIGNATURE = re.compile(r"^0x[0-9a-fA-F]{130}$")


def batchable_signature(signature: bytes) -> bool:
    """True if the contract counts this signature in a batch: 65 bytes of plain ECDSA with a
    low ``s`` and ``v`` of 27 or 28 (a high-``s`` twin recovers the same signer, but a client
    could later prove it "forged" and void the entry)."""
    if len(signature) != 65:
        return False
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    return 0 < r < _SECP256K1_N and 0 < s <= _SECP256K1_N // 2 and signature[64] in (27, 28)


def signer_of(digest: bytes, signature: bytes) -> Address | None:
    """Who signed ``digest``, counting only what a batch counts (``batchable_signature``)."""
    if not batchable_signature(signature):
        return None
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    try:
        key = KeyAPI.Signature(vrs=(signature[64] - 27, r, s)).recover_public_key_from_msg_hash(
            digest
        )
    except BadSignature:
        return None
    return Address(key.to_checksum_address())


def leaf_fault(job: BatchedJob, client: str, poster: str, posted_at: int) -> str:
    """The rule a leaf breaks, by the contract's ``Fault`` name (``"None"`` if sound), as the
    contract's ``leafFault`` checks it, in the same order."""
    j = job.job
    hops = len(j.route)
    if not 0 < hops <= 255 or len(j.span_starts) != hops or len(j.span_ends) != hops:
        return "BadRoute"
    expected = 0
    for start, end in zip(j.span_starts, j.span_ends, strict=True):
        if start != expected or end <= start:
            return "BadRoute"
        expected = end
    if j.client.lower() != client.lower():
        return "WrongClient"
    if len(job.prices) != hops or any(p > j.max_price_per_token for p in job.prices):
        return "BadPrices"
    if not 0 < job.tokens_served <= j.max_tokens:
        return "BadTokens"
    if j.deadline < posted_at:
        return "Expired"
    if poster.lower() not in (n.lower() for n in j.route):
        return "PosterNotInRoute"
    signer = signer_of(job.job_hash, job.signature)
    if signer is None or signer.lower() != client.lower():
        return "BadSignature"
    return "None"


@dataclass(frozen=True)
class BatchedJob:
    """One leaf: the signed job, its signature, its index in the entry, what it served and
    committed, and the price each hop charged per token per layer."""

    job: Job
    job_hash: bytes
    signature: bytes
    index: int
    tokens_served: int
    commitment: bytes
    prices: tuple[int, ...]

    def amounts(self) -> list[int]:
        """What each hop is paid: tokens x layers x price."""
        return [
            self.tokens_served * layers * price
            for layers, price in zip(self.job.hop_layers(), self.prices, strict=True)
        ]

    def rewards(self, reward_per_token: int) -> list[int]:
        """Each hop's share of the reward, split by layers as the market splits it."""
        total = self.job.span_ends[-1]
        return [
            reward_per_token * self.tokens_served * layers // total
            for layers in self.job.hop_layers()
        ]

    def leaf(self) -> bytes:
        inner = keccak(
            encode(
                _LEAF_TYPES,
                [
                    self.index,
                    self.job_hash,
                    keccak(self.signature),
                    self.tokens_served,
                    self.commitment,
                    list(self.prices),
                ],
            )
        )
        return keccak(inner)

    def as_tuple(self) -> tuple[object, ...]:
        """The ABI tuple of the contract's ``BatchedJob``."""
        return (
            self.job.as_tuple(),
            self.signature,
            self.index,
            self.tokens_served,
            self.commitment,
            list(self.prices),
        )

    def leaf_tuple(self) -> tuple[object, ...]:
        """The ABI tuple of the contract's ``Leaf`` (the leaf without the job)."""
        return (
            self.index,
            self.job_hash,
            keccak(self.signature),
            self.tokens_served,
            self.commitment,
            list(self.prices),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "job": self.job.to_json(),
            "jobHash": "0x" + self.job_hash.hex(),
            "signature": "0x" + self.signature.hex(),
            "index": self.index,
            "tokensServed": self.tokens_served,
            "commitment": "0x" + self.commitment.hex(),
            "prices": [str(p) for p in self.prices],
        }

    @classmethod
    def from_json(cls, body: Any, chain_id: int, market: str) -> BatchedJob:
        """Strictly parsed; the job hash is recomputed, never taken on trust."""
        if not isinstance(body, dict):
            raise ProtocolError("batched job: expected an object", field="job")
        try:
            job = Job.from_json(body["job"])
            signature = body["signature"]
            if not isinstance(signature, str) or not _SIGNATURE.match(signature):
                raise ProtocolError("signature: expected 65 bytes of hex", field="signature")
            prices = body["prices"]
            if not isinstance(prices, list) or len(prices) != len(job.route):
                raise ProtocolError("prices: expected one price per hop", field="prices")
            made = cls(
                job=job,
                job_hash=job_digest(job, chain_id, market),
                signature=bytes.fromhex(signature[2:]),
                index=parse_uint(body["index"], "index", 32),
                tokens_served=parse_uint(body["tokensServed"], "tokensServed", 32),
                commitment=bytes32_to_bytes(parse_job_id(body["commitment"], "commitment")),
                prices=tuple(parse_uint(p, f"prices[{i}]") for i, p in enumerate(prices)),
            )
        except KeyError as exc:
            raise ProtocolError(f"batched job: missing {exc}", field=str(exc)) from None
        if "jobHash" in body and body["jobHash"] != "0x" + made.job_hash.hex():
            raise ProtocolError("jobHash: not the hash of the job given", field="jobHash")
        return made


@dataclass(frozen=True)
class Credit:
    node: Address
    amount: int
    reward: int

    def as_tuple(self) -> tuple[object, ...]:
        return (self.node, self.amount, self.reward)


@dataclass(frozen=True)
class Entry:
    """One client's jobs in a batch; ``jobs`` in leaf order."""

    client: Address
    jobs: tuple[BatchedJob, ...]
    credits: tuple[Credit, ...]

    @property
    def root(self) -> bytes:
        return merkle_root([job.leaf() for job in self.jobs])

    @property
    def debit(self) -> int:
        return sum(c.amount for c in self.credits)

    def as_tuple(self) -> tuple[object, ...]:
        """The ABI tuple of the contract's ``Entry``."""
        return (self.client, self.root, len(self.jobs), [c.as_tuple() for c in self.credits])

    def hash(self) -> bytes:
        return keccak(encode([ENTRY_TYPE], [self.as_tuple()]))

    def proof(self, index: int) -> list[bytes]:
        return merkle_proof([job.leaf() for job in self.jobs], index)


def _pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


def _up(level: list[bytes]) -> list[bytes]:
    return [
        _pair(level[k], level[k + 1]) if k + 1 < len(level) else level[k]
        for k in range(0, len(level), 2)
    ]


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    if not leaves:
        raise ValueError("a tree needs at least one leaf")
    level = list(leaves)
    while len(level) > 1:
        level = _up(level)
    return level[0]


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The siblings from leaf ``index`` up, as OpenZeppelin's ``MerkleProof.verify`` takes."""
    level = list(leaves)
    proof = []
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        level = _up(level)
        index //= 2
    return proof


def build_entry(client: Address, jobs: Iterable[BatchedJob], reward_per_token: int) -> Entry:
    """The entry a poster builds for one client's jobs: leaves sorted by job hash and
    indexed in that order, credits per node sorted by address."""
    ordered = sorted(jobs, key=lambda j: j.job_hash)
    if not ordered or len(ordered) > MAX_ENTRY_JOBS:
        raise ValueError(f"an entry holds 1 to {MAX_ENTRY_JOBS} jobs, not {len(ordered)}")
    indexed = tuple(
        BatchedJob(j.job, j.job_hash, j.signature, k, j.tokens_served, j.commitment, j.prices)
        for k, j in enumerate(ordered)
    )
    pay: dict[str, list[int]] = {}
    for job in indexed:
        for node, amount, reward in zip(
            job.job.route, job.amounts(), job.rewards(reward_per_token), strict=True
        ):
            totals = pay.setdefault(node, [0, 0])
            totals[0] += amount
            totals[1] += reward
    credits = tuple(
        Credit(Address(node), amount, reward)
        for node, (amount, reward) in sorted(pay.items(), key=lambda kv: int(kv[0], 16))
    )
    return Entry(client, indexed, credits)


def build_batch(
    jobs_by_client: dict[Address, list[BatchedJob]], reward_per_token: int
) -> list[Entry]:
    """A batch's entries, sorted by client address."""
    return [
        build_entry(client, jobs, reward_per_token)
        for client, jobs in sorted(jobs_by_client.items(), key=lambda kv: int(kv[0], 16))
    ]


@dataclass(frozen=True)
class Payout:
    """What a batch pays each node, in the order its funded entries first credit them."""

    nodes: tuple[Address, ...]
    amounts: tuple[int, ...]
    rewards: tuple[int, ...]

    def as_tuple(self) -> tuple[object, ...]:
        return (list(self.nodes), list(self.amounts), list(self.rewards))

    def of(self, node: str) -> tuple[int, int]:
        """Pay and reward for ``node`` (zero if the batch does not credit it)."""
        for n, amount, reward in zip(self.nodes, self.amounts, self.rewards, strict=True):
            if n.lower() == node.lower():
                return amount, reward
        return 0, 0


def batch_payout(entries: Sequence[Entry], unfunded: int = 0) -> Payout:
    """The payout the contract stores for ``entries``; bit ``i`` of ``unfunded`` drops entry
    ``i`` (its client's escrow did not cover it)."""
    order: list[Address] = []
    totals: dict[Address, list[int]] = {}
    for i, entry in enumerate(entries):
        if unfunded >> i & 1:
            continue
        for credit in entry.credits:
            if credit.node not in totals:
                order.append(credit.node)
                totals[credit.node] = [0, 0]
            totals[credit.node][0] += credit.amount
            totals[credit.node][1] += credit.reward
    return Payout(
        tuple(order), tuple(totals[n][0] for n in order), tuple(totals[n][1] for n in order)
    )


def batch_to_json(entries: Sequence[Entry]) -> dict[str, Any]:
    """A batch's content as a poster keeps and serves it: every entry's client and jobs."""
    return {
        "entries": [{"client": e.client, "jobs": [j.to_json() for j in e.jobs]} for e in entries]
    }


def batch_from_json(body: Any, chain_id: int, market: str, reward_per_token: int) -> list[Entry]:
    """A batch served by its poster, rebuilt (credits and roots recomputed from the jobs)."""
    if not isinstance(body, dict) or not isinstance(body.get("entries"), list):
        raise ProtocolError('batch: expected {"entries": [...]}', field="entries")
    if not 0 < len(body["entries"]) <= MAX_ENTRIES:
        raise ProtocolError(f"batch: 1 to {MAX_ENTRIES} entries", field="entries")
    entries = []
    for i, raw in enumerate(body["entries"]):
        if not isinstance(raw, dict) or not isinstance(raw.get("jobs"), list):
            raise ProtocolError(f"entries[{i}]: expected client and jobs", field="entries")
        if len(raw["jobs"]) > MAX_ENTRY_JOBS:
            raise ProtocolError(f"entries[{i}]: more than {MAX_ENTRY_JOBS} jobs", field="jobs")
        client = parse_address(raw.get("client"), f"entries[{i}].client")
        jobs = [BatchedJob.from_json(j, chain_id, market) for j in raw["jobs"]]
        entry = build_entry(client, jobs, reward_per_token)
        if [j.index for j in jobs] != [j.index for j in entry.jobs] or [
            j.job_hash for j in jobs
        ] != [j.job_hash for j in entry.jobs]:
            raise ProtocolError(f"entries[{i}]: jobs not in leaf order", field="jobs")
        entries.append(entry)
    return entries


def entries_hash(entries: Sequence[Entry]) -> bytes:
    """The batch's ``entriesHash``: the packed keccak of its entry hashes."""
    return keccak(b"".join(e.hash() for e in entries))


def entry_ref(batch_id: int, entries: Sequence[Entry], index: int) -> tuple[object, ...]:
    """The ABI tuple of the contract's ``EntryRef`` for entry ``index`` of a posted batch."""
    return (batch_id, index, [e.hash() for e in entries], entries[index].as_tuple())
