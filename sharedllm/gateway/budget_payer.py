"""Paying for an API request from the operator's wallet, within the API key's budget.

A ``BudgetPayer`` is the client's ``Payer`` with one extra rule: before a job is signed,
the job's worst case (max tokens x route price) is reserved from the key's budget; a key
that cannot cover it gets a ``BudgetError`` and nothing is signed. When the request ends,
each job's actual cost is charged and the rest released.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from sharedllm.chain.connection import Chain
from sharedllm.client.job_book import JobBook
from sharedllm.client.payer import PaidJob, Payer
from sharedllm.client.payment import route_price
from sharedllm.client.registry_directory import RegistryDirectory
from sharedllm.errors import SharedLLMError
from sharedllm.gateway.api_keys import ApiKeys
from sharedllm.protocol.session_msgs import Hop

log = logging.getLogger("sharedllm.gateway")


class BudgetPayer(Payer):
    def __init__(
        self,
        chain: Chain,
        account: object,
        directory: RegistryDirectory,
        book: JobBook | None,
        keys: ApiKeys,
        key_id: str,
        ttl_s: int | None = None,
    ) -> None:
        kwargs = {} if ttl_s is None else {"ttl_s": ttl_s}
        super().__init__(chain, account, directory, book, **kwargs)
        self.keys = keys
        self.key_id = key_id
        self._held: dict[str, list[int]] = {}  # job id -> its reservations

    async def job_for(self, model_id: str, route: Sequence[Hop], max_tokens: int) -> PaidJob:
        hops = await self.directory.priced_route(route)
        worst = max_tokens * route_price(hops)
        held = [await asyncio.to_thread(self.keys.reserve, self.key_id, worst)]
        paid: PaidJob | None = None
        try:
            paid = await super().job_for(model_id, route, max_tokens)
            # The directory may have re-read a raised price in between: hold the difference
            # too, before the job leaves this process.
            extra = max_tokens * paid.price_per_token - worst
            if extra > 0:
                held.append(await asyncio.to_thread(self.keys.reserve, self.key_id, extra))
        except BaseException:
            for rid in held:
                self.keys.settle(rid, 0)
            self.jobs = [j for j in self.jobs if j is not paid]  # signed, never sent
            raise
        for rid in held:
            await asyncio.to_thread(
                self.keys.attach, rid, paid.signed.job_id, paid.signed.job.deadline
            )
        self._held[paid.signed.job_id] = held
        return paid

    def settle_all(self, current: PaidJob | None = None, position: int = 0) -> int:
        """Charge every job of this request its cost; returns the total charged.

        A session normally records what each route served when it closes. If the request was
        cancelled before that, the current job is charged for the positions the session had
        already run, since its last hop will still claim them.
        """
        total = 0
        for paid in self.jobs:
            held = self._held.pop(paid.signed.job_id, None)
            if held is None:
                continue
            if paid is current and not paid.tokens and position:
                paid.tokens = position
            for i, rid in enumerate(held):
                try:
                    self.keys.settle(rid, paid.cost if i == 0 else 0)
                except SharedLLMError:
                    log.exception("could not settle reservation %s", rid)
            total += paid.cost
        return total


async def reconcile(keys: ApiKeys, chain: Chain) -> int:
    """Settle reservations a previous gateway process left behind; returns how many.

    What such a job cost is on-chain once its last hop submitted it. A job the chain never
    saw and whose deadline has passed can no longer cost anything; one still inside its
    deadline keeps its reservation until the next start.
    """
    now = await asyncio.to_thread(chain.now)
    settled = 0
    charged: set[str] = set()  # a job with a topped-up hold has two rows; charge it once
    for r in keys.reservations():
        if r.job_id is None:
            keys.settle(r.reservation_id, 0)  # reserved, but never signed
            settled += 1
            continue
        record = await asyncio.to_thread(chain.market.get_job, r.job_id)
        if record.status in ("Submitted", "Finalized"):
            cost = 0 if r.job_id in charged else record.cost
            keys.settle(r.reservation_id, cost)
            charged.add(r.job_id)
        elif record.status == "Challenged" or (r.deadline is not None and r.deadline < now):
            keys.settle(r.reservation_id, 0)
        else:
            continue
        settled += 1
    return settled
