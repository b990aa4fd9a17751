"""The client's wallet side of a session: sign a job for each route, remember what was paid.

A session asks the payer for a job whenever it settles on a route (at the start, and again
after a failover, because a job names its route's nodes). Every signed job is written to the
client's job book before it is sent, so ``sharedllm jobs`` can follow it on-chain even if the
client dies mid-answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sharedllm.chain.connection import Chain
from sharedllm.client.job_book import JobBook
from sharedllm.client.payment import PricedHop, SignedJob, make_job, route_price, sign
from sharedllm.client.registry_directory import RegistryDirectory
from sharedllm.errors import JobRejected
from sharedllm.protocol.amendment import Amendment, record_hops, sign_amendment, with_amendment
from sharedllm.protocol.session_msgs import Hop
from sharedllm.protocol.types import Address

DEFAULT_TTL_S = 300


@dataclass
class PaidJob:
    signed: SignedJob
    hops: list[PricedHop]
    tokens: int = 0
    receipts: dict[int, list[str]] = field(default_factory=dict)
    amendments: tuple[Amendment, ...] = ()  # hops replaced mid-answer, in the contract's order
    replacements: list[PricedHop] = field(default_factory=list)

    @property
    def price_per_token(self) -> int:
        return route_price(self.hops)

    @property
    def cost(self) -> int:
        """What the market charges for the tokens served: each node its positions (a
        replacement's replay included) times its layers and price."""
        if not self.amendments:
            return self.tokens * self.price_per_token
        priced = {h.address: h for h in [*self.hops, *self.replacements]}
        route = [h.address for h in self.hops]
        return sum(
            e.positions * priced[e.node].layers * priced[e.node].price_per_token
            for e in record_hops(route, self.amendments, self.tokens)
        )


class Payer:
    # Whether this payer can sign an amendment on its own, mid-answer (a browser wallet
    # would need its user at every failover; it pays for a new job instead).
    can_amend = True

    def __init__(
        self,
        chain: Chain,
        account: object,
        directory: RegistryDirectory,
        book: JobBook | None = None,
        ttl_s: int = DEFAULT_TTL_S,
    ) -> None:
        self.chain = chain
        self.account = account
        self.directory = directory
        self.book = book
        self.ttl_s = min(ttl_s, int(chain.market.params()["maxJobTtl"]) - 30)
        self.jobs: list[PaidJob] = []

    @property
    def address(self) -> str:
        return self.account.address  # type: ignore[attr-defined]

    async def job_for(self, model_id: str, route: Sequence[Hop], max_tokens: int) -> PaidJob:
        hops = await self.directory.priced_route(route)
        now = self.chain.now()
        job = make_job(model_id, hops, self.address, max_tokens, self.ttl_s, now=now)
        need = max_tokens * route_price(hops)
        have = self.chain.market.escrow_of(self.address)
        if have < need:
            raise JobRejected(
                f"escrow {have} wei does not cover {max_tokens} tokens at "
                f"{route_price(hops)} wei each ({need} wei): run `sharedllm deposit`",
                code="InsufficientEscrow",
                have=have,
                need=need,
            )
        signed = sign(job, self.account, self.chain.chain_id, self.chain.market.address)
        if self.book is not None:
            self.book.record_signed(
                signed.job_id,
                job,
                signed.signature,
                [h.url for h in hops],
                need,
                market=self.chain.market.address,
            )
        paid = PaidJob(signed, hops)
        self.jobs.append(paid)
        return paid

    async def amend(
        self, paid: PaidJob, hop: int, replacement: Hop, from_position: int
    ) -> Amendment:
        """Sign the amendment that hands ``hop`` of the paid job to ``replacement`` from
        ``from_position`` on; the escrow must cover the job's worst case with it."""
        priced = (await self.directory.priced_route([replacement]))[0]
        job = paid.signed.job
        if priced.price_per_token > job.max_price_per_token:
            raise JobRejected(
                f"{replacement.url} charges {priced.price_per_token} per layer-token, above "
                f"the job's cap {job.max_price_per_token}",
                code="PriceAboveCap",
            )
        extra = job.max_tokens * priced.layers * priced.price_per_token
        need = (
            job.max_tokens * paid.price_per_token
            + extra
            + sum(job.max_tokens * h.layers * h.price_per_token for h in paid.replacements)
        )
        have = self.chain.market.escrow_of(self.address)
        if have < need:
            raise JobRejected(
                f"escrow {have} wei does not cover the job with a replacement ({need} wei)",
                code="InsufficientEscrow",
                have=have,
                need=need,
            )
        amendment = sign_amendment(
            Amendment(hop, Address(priced.address), from_position),
            bytes.fromhex(paid.signed.job_id[2:]),
            self.account,
            self.chain.chain_id,
            self.chain.market.address,
        )
        paid.amendments = with_amendment(paid.amendments, amendment)
        paid.replacements.append(priced)
        return amendment

    def served(self, paid: PaidJob, tokens: int, preview: str = "") -> None:
        paid.tokens = tokens
        if self.book is not None and tokens:
            self.book.record_served(paid.signed.job_id, tokens, paid.cost, preview)
