"""A client on another host (run in a network namespace by the namespace tests): greedy
tokens for one prompt, printed as one JSON line with the route, the failovers it took, when
the first one happened, and the jobs it paid (and from which positions the last one's
amendments hand their hops over).

    python tests/netns_client.py PROMPT TOKENS [--nodes URL#KEY ...] [--later URL#KEY ...]
    python tests/netns_client.py PROMPT TOKENS --rpc-url URL --deployment FILE \\
        --dev-account N --book FILE [--first URL ...]

Free: nodes given after ``--later`` join the directory after the first route was planned.
Paid: the registry is the directory and the dev account pays; the first route uses only the
nodes after ``--first``, and any registered node may replace a hop later.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.connection import connect
from sharedllm.chain.deployment import Deployment
from sharedllm.client.directory import StaticDirectory
from sharedllm.client.generate import TextGenerator
from sharedllm.client.job_book import JobBook
from sharedllm.client.payer import Payer
from sharedllm.client.planner import RoutePolicy
from sharedllm.client.registry_directory import RegistryDirectory
from sharedllm.model.client_model import ClientModel
from sharedllm.model.store import ModelStore


class LateJoiners(StaticDirectory):
    def __init__(self, first: list[str], later: list[str]) -> None:
        super().__init__(first + later)
        self.first = StaticDirectory(first)
        self.plans = 0

    async def endpoints(self) -> list[str]:
        self.plans += 1
        return await (self.first.endpoints() if self.plans == 1 else super().endpoints())


async def main(args: argparse.Namespace) -> dict[str, Any]:
    store = ModelStore()
    model = ClientModel(store, store.manifest())
    payer = None
    policy = None
    if args.rpc_url:
        chain = connect(args.rpc_url, Deployment.load(Path(args.deployment)))
        account = dev_account(args.dev_account)
        payer = Payer(chain, account, RegistryDirectory(chain), JobBook(Path(args.book)))
        directory: Any = payer.directory
        policy = RoutePolicy(trusted=args.first) if args.first else None
    else:
        directory = LateJoiners(args.nodes, args.later)
    async with TextGenerator(
        directory, client_model=model, step_timeout_s=20.0, payer=payer, policy=policy
    ) as gen:
        ids = model.prompt_ids(args.prompt)
        out: list[int] = []
        failed_at = None  # how many tokens had arrived when the first failover was done
        async for token in gen.token_ids(ids, args.tokens):
            assert gen.session is not None
            if failed_at is None and gen.session.failovers:
                failed_at = len(out)
            out.append(token)
            gen.planner.policy = RoutePolicy()  # from now on any node may replace a hop
        assert gen.session is not None
        return {
            "tokens": out,
            "route": [h.url for h in gen.session.route],
            "failovers": [failed for failed, _ in gen.session.failovers],
            "failed_at": failed_at,
            "jobs": [job.signed.job_id for job in payer.jobs] if payer is not None else [],
            # Where each amendment of the last job hands its hop over, and the prompt's length.
            "amended_from": [a.from_position for a in payer.jobs[-1].amendments]
            if payer is not None
            else [],
            "prompt_positions": len(ids),
        }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("prompt")
    parser.add_argument("tokens", type=int)
    parser.add_argument("--nodes", nargs="*", default=[])
    parser.add_argument("--later", nargs="*", default=[])
    parser.add_argument("--rpc-url")
    parser.add_argument("--deployment")
    parser.add_argument("--dev-account", type=int)
    parser.add_argument("--book")
    parser.add_argument("--first", nargs="*", default=[])
    print(json.dumps(asyncio.run(main(parser.parse_args()))), flush=True)
