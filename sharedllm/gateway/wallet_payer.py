"""A payer whose signatures come from the visitor's browser wallet, not from a key we hold.

The gateway plans the route and builds the job, then hands the EIP-712 message to the page
and waits: the page asks the wallet to sign (``eth_signTypedData_v4``) and posts the result
to ``/api/jobs/{job_id}/signature``. The gateway never holds a key that could spend the
visitor's escrow; the most it can do with a signature is run the job the visitor saw.

A failover needs a new job (a job names its nodes), so the page is asked again the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sharedllm.chain.connection import Chain
from sharedllm.client.job_book import JobBook
from sharedllm.client.payer import PaidJob, Payer
from sharedllm.client.payment import PricedHop, SignedJob, make_job, route_price
from sharedllm.client.registry_directory import RegistryDirectory
from sharedllm.errors import (
    JobRejected,
    SignatureRefused,
    SignatureTimeout,
    WrongSigner,
)
from sharedllm.protocol.job import Job, job_id, recover_job_signer
from sharedllm.protocol.session_msgs import Hop
from sharedllm.protocol.types import Address, JobId, parse_address

SIGN_TIMEOUT_S = 120.0

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


class PendingSignatures:
    """Jobs waiting for their wallet's answer, by job id; shared by the chat and signature
    handlers of one gateway."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[bytes | None]] = {}

    def expect(self, jid: JobId) -> asyncio.Future[bytes | None]:
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._waiting[jid] = future
        return future

    def forget(self, jid: JobId) -> None:
        self._waiting.pop(jid, None)

    def answer(self, jid: JobId, signature: bytes | None) -> bool:
        """Deliver a signature (None: refused); False if nobody is waiting for this job."""
        future = self._waiting.get(jid)
        if future is None or future.done():
            return False
        future.set_result(signature)
        return True


def typed_data_for_wallet(job: Job, chain_id: int, market: str) -> dict[str, Any]:
    """The EIP-712 message with uint values above 2**53 as decimal strings.

    JavaScript's JSON parser would round a 128-bit nonce; wallets accept decimal strings for
    uint fields, and the gateway checks the signature against its own exact job anyway.
    """
    data = job.typed_data(chain_id, market)
    message = dict(data["message"])
    for name in ("maxPricePerToken", "nonce"):
        message[name] = str(message[name])
    data["message"] = message
    return data


class WalletPayer(Payer):
    """``job_for`` publishes a sign request through ``emit`` and waits for the wallet."""

    can_amend = False  # the user signs in the browser: a failover pays for a new job

    def __init__(
        self,
        chain: Chain,
        client: str,
        directory: RegistryDirectory,
        pending: PendingSignatures,
        emit: Emit,
        book: JobBook | None = None,
        sign_timeout_s: float = SIGN_TIMEOUT_S,
    ) -> None:
        super().__init__(chain, None, directory, book)
        self.client: Address = parse_address(client, "client")
        self.pending = pending
        self.emit = emit
        self.sign_timeout_s = sign_timeout_s

    @property
    def address(self) -> str:
        return self.client

    async def job_for(self, model_id: str, route: Sequence[Hop], max_tokens: int) -> PaidJob:
        hops = await self.directory.priced_route(route)
        price = route_price(hops)
        need = max_tokens * price
        now, have = await asyncio.to_thread(self._chain_now_and_escrow)
        await self.emit("route", _route_event(hops, price, need))
        if have < need:
            raise JobRejected(
                f"your escrow holds {have} wei; this answer may need up to {need} wei "
                f"({max_tokens} tokens at {price} wei each): deposit more SHARE",
                code="InsufficientEscrow",
                have=have,
                need=need,
            )
        job = make_job(model_id, hops, self.client, max_tokens, self.ttl_s, now=now)
        chain_id, market = self.chain.chain_id, self.chain.market.address
        jid = job_id(job, chain_id, market)
        waiting = self.pending.expect(jid)
        try:
            await self.emit(
                "sign",
                {
                    "jobId": jid,
                    "typedData": typed_data_for_wallet(job, chain_id, market),
                    "maxCost": str(need),
                },
            )
            signature = await asyncio.wait_for(waiting, self.sign_timeout_s)
        except TimeoutError:
            raise SignatureTimeout(
                f"no signature for job {jid} within {self.sign_timeout_s:.0f} s; "
                "nothing was signed and nothing is charged",
                job_id=jid,
            ) from None
        finally:
            self.pending.forget(jid)
        if signature is None:
            raise SignatureRefused(
                "the wallet refused to sign the job: nothing was signed and nothing is charged",
                job_id=jid,
            )
        signer = recover_job_signer(job, signature, chain_id, market)
        if signer != self.client:
            raise WrongSigner(
                f"the job was signed by {signer}, not by its client {self.client}",
                field="signature",
                signer=signer,
            )
        signed = SignedJob(job, signature, jid)
        if self.book is not None:
            await asyncio.to_thread(
                self.book.record_signed,
                jid,
                job,
                signature,
                [h.url for h in hops],
                need,
                market=market,
            )
        paid = PaidJob(signed, hops)
        self.jobs.append(paid)
        await self.emit("signed", {"jobId": jid})
        return paid

    def _chain_now_and_escrow(self) -> tuple[int, int]:
        now = self.chain.now()
        return now, self.chain.market.escrow_of(self.client)


def _route_event(hops: Sequence[PricedHop], price: int, need: int) -> dict[str, Any]:
    return {
        "hops": [
            {
                "url": h.url,
                "address": h.address,
                "span": [h.start, h.end],
                "pricePerToken": str(h.price_per_token),
            }
            for h in hops
        ],
        "pricePerToken": str(price),
        "maxCost": str(need),
    }
