"""What a paid answer costs its client when a hop dies mid-answer, against the same answer
unbroken, in one run.

Two failovers, on the same network and the same kills: the default, which amends the job so
that only the replacement recomputes, and the baseline, a payer that cannot amend (as a
browser wallet), which settles the old job and pays for a new one on a new route that
replays the history through every hop. The free network's cost of a failover is the
replacement's replay of one span: the positions before the failure times its layers and
price. Spans 0:10, 10:20 and 20:30 are each served by two nodes at one price; every run
kills a random hop of the route after a random number of tokens, then restarts it. Costs
are what the market charged, to the wei.

    SHAREDLLM_HOME=.state .venv/bin/python bench/failover_cost.py [--runs 8] [--tokens 24]
"""

from __future__ import annotations

import argparse
import asyncio
import random
from dataclasses import dataclass

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.client.generate import TextGenerator
from sharedllm.localnet import NODE_PRICE, LocalNetwork

PROMPT = "Tell me a short story about a robot who learns to paint."
SPANS = [(0, 10), (10, 20), (20, 30), (0, 10), (10, 20), (20, 30)]
LAYERS = 10


@dataclass
class Answer:
    tokens: list[int]
    cost: int  # every job of the answer, as the market charged it
    jobs: int
    replayed: int  # positions before the failure (0 unbroken)


async def _answer(net: LocalNetwork, client, tokens: int, amend: bool, hop: int | None,
                  after: int) -> tuple[list[int], list, int | None]:  # fmt: skip
    payer = net.payer(client)
    payer.can_amend = amend
    killed = None
    async with TextGenerator(payer.directory, payer=payer, store=net.store) as gen:
        out = []
        async for token in gen.token_ids(gen.model.prompt_ids(PROMPT), tokens):
            out.append(token)
            if hop is not None and len(out) == after:
                url = gen.session.route[hop].url
                killed = next(i for i, n in enumerate(net.nodes) if n is not None and n.url == url)
                net.nodes[killed].kill()
    return out, payer.jobs, killed


def answer(net: LocalNetwork, client, tokens: int, amend: bool = True, hop: int | None = None,
           after: int = 0) -> Answer:  # fmt: skip
    out, jobs, killed = asyncio.run(_answer(net, client, tokens, amend, hop, after))
    cost = sum(
        net.wait_for_job(j.signed.job_id, "Submitted", "Finalized", timeout=120).cost for j in jobs
    )
    replayed = jobs[0].amendments[0].from_position if amend and jobs[0].amendments else 0
    if not replayed and hop is not None:
        replayed = jobs[0].tokens  # a new job: the old one served this far
    if killed is not None:
        net.restart(killed)
    return Answer(out, cost, len(jobs), replayed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    rows = []
    with LocalNetwork(SPANS, node_accounts=(1, 2, 3, 4, 5, 6)) as net:
        client = dev_account(7)
        net.chain.market.deposit(client, 20 * WEI_PER_SHARE, net.chain.token)
        unbroken = answer(net, client, args.tokens)
        for run in range(args.runs):
            hop, after = (
                rng.randrange(3),
                rng.randrange(2, min(args.tokens, len(unbroken.tokens)) - 2),
            )
            restarted = answer(net, client, args.tokens, amend=False, hop=hop, after=after)
            amended = answer(net, client, args.tokens, amend=True, hop=hop, after=after)
            same = restarted.tokens == amended.tokens == unbroken.tokens
            replay = amended.replayed * LAYERS * NODE_PRICE
            rows.append((run, hop, after, unbroken.cost, restarted, amended, replay, same))
    print("| run | hop killed | after token | unbroken (wei) | new job (wei) | amended (wei) | "
          "free network's replay | amended - unbroken - replay | same text |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for run, hop, after, base, restarted, amended, replay, same in rows:
        print(
            f"| {run} | {hop} | {after} | {base:.3e} | {restarted.cost:.3e} "
            f"({restarted.cost / base - 1:+.0%}, {restarted.jobs} jobs) | {amended.cost:.3e} "
            f"({amended.cost / base - 1:+.0%}, {amended.jobs} job) | {replay:.3e} "
            f"({replay / base:+.0%}) | {amended.cost - base - replay} | {'yes' if same else 'NO'} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
