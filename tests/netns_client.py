"""A client on another host (run in a network namespace by the namespace tests): greedy
tokens for one prompt through the nodes named, printed as one JSON line with the route and
the failovers it took.

    python tests/netns_client.py PROMPT TOKENS URL#KEY [URL#KEY ...] [--later URL#KEY ...]

Nodes after ``--later`` join the client's directory after its first route was planned: the
route starts on the others, and a failover may use them.
"""

from __future__ import annotations

import asyncio
import json
import sys

from sharedllm.client.directory import StaticDirectory
from sharedllm.client.generate import TextGenerator
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


async def main(prompt: str, tokens: int, nodes: list[str], later: list[str]) -> dict:
    store = ModelStore()
    model = ClientModel(store, store.manifest())
    directory = LateJoiners(nodes, later)
    async with TextGenerator(directory, client_model=model, step_timeout_s=20.0) as gen:
        ids = model.prompt_ids(prompt)
        out: list[int] = []
        failed_at = None  # how many tokens had arrived when the first failover was done
        async for token in gen.token_ids(ids, tokens):
            assert gen.session is not None
            if failed_at is None and gen.session.failovers:
                failed_at = len(out)
            out.append(token)
        assert gen.session is not None
        return {
            "tokens": out,
            "route": [h.url for h in gen.session.route],
            "failovers": [failed for failed, _ in gen.session.failovers],
            "failed_at": failed_at,
        }


if __name__ == "__main__":
    prompt, tokens, *rest = sys.argv[1:]
    cut = rest.index("--later") if "--later" in rest else len(rest)
    nodes, later = rest[:cut], rest[cut + 1 :]
    print(json.dumps(asyncio.run(main(prompt, int(tokens), nodes, later))), flush=True)
