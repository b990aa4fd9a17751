"""Does a token cost exactly (hops + 1) one-way link delays? Measured with one-layer spans so
that compute (and the noise of a shared CPU) stays small next to the delay.

    SHAREDLLM_HOME=.state .venv/bin/python bench/link_delay.py [--delay-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import numpy as np

from sharedllm.client.directory import StaticDirectory
from sharedllm.client.planner import RoutePlanner
from sharedllm.client.session import InferenceSession
from sharedllm.model.store import ModelStore
from sharedllm.node.local import local_nodes
from sharedllm.peers.http import PeerClient

STEPS = 40


async def step_ms(urls: list[str], layers: int, delay_ms: float, hidden: int, model: str) -> float:
    """Median wall time of a one-position step through the route (client side)."""
    async with PeerClient(link_delay_s=delay_ms / 1000.0) as peers:
        planner = RoutePlanner(StaticDirectory(urls), peers)
        async with InferenceSession(planner, model, layers, hidden, max_length=STEPS + 1) as s:
            x = np.random.default_rng(0).standard_normal((1, 1, hidden)).astype(np.float32)
            times = []
            for _ in range(STEPS):
                began = time.perf_counter()
                await s.step(x)
                times.append((time.perf_counter() - began) * 1000.0)
    return statistics.median(times[5:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=20.0)
    args = parser.parse_args()
    m = ModelStore().manifest()
    d = args.delay_ms
    print(f"\none-layer hops, median of {STEPS - 5} steps, one-way delay d = {d:.0f} ms\n")
    print("| hops | ms/step, no delay | ms/step, delay d | added | expected (hops+1) x d |")
    print("|---:|---:|---:|---:|---:|")
    for hops in (1, 3):
        spans = [f"{i}:{i + 1}" for i in range(hops)]
        measured = {}
        for delay in (0.0, d):
            with local_nodes(spans, "--threads", "1", "--link-delay-ms", str(delay)) as nodes:
                urls = [n.pinned_url for n in nodes]
                measured[delay] = asyncio.run(step_ms(urls, hops, delay, m.hidden_size, m.model_id))
        added = measured[d] - measured[0.0]
        print(
            f"| {hops} | {measured[0.0]:.1f} | {measured[d]:.1f} | {added:.1f} | "
            f"{(hops + 1) * d:.0f} |"
        )


if __name__ == "__main__":
    main()
