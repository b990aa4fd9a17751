"""Route planning over parts of spans, against planning over whole spans only (the baseline,
the search the planner ran before, measured in the same run).

For random networks of N nodes on a model of L layers (each node a random span of 4..L/2
layers, a random speed), it prints how often a route exists at all, how fast the chosen
route is, and how long one plan takes:

    python bench/planner.py [--networks 200] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sharedllm.client.planner import RoutePolicy, best_chain  # noqa: E402
from sharedllm.errors import RouteError  # noqa: E402
from sharedllm.peers.probe import Candidate  # noqa: E402
from sharedllm.protocol.node_info import NodeInfo  # noqa: E402

MODEL = "0x" + "11" * 32


def whole_spans(nodes: list[Candidate], end: int, policy: RoutePolicy) -> float | None:
    """The baseline: spans chain only where one ends exactly where the next begins; the
    route's estimated ms per token, or None when no route exists."""
    best: dict[int, float] = {0: 0.0}
    for boundary in range(end):
        if boundary not in best:
            continue
        for node in nodes:
            if node.info.start != boundary or node.info.end > end:
                continue
            total = best[boundary] + policy.cost(node, node.info.layers)[0]
            if total < best.get(node.info.end, float("inf")):
                best[node.info.end] = total
    return best.get(end)


def network(rng: random.Random, count: int, layers: int) -> list[Candidate]:
    nodes = []
    for i in range(count):
        length = rng.randint(4, layers // 2)
        start = rng.randint(0, layers - length)
        ms = rng.uniform(0.5, 2.0) * length  # ms per token over its span
        info = NodeInfo("0.1.0", MODEL, start, start + length, layers, 576, 0, 16, 4096, ms, 1)
        nodes.append(Candidate(f"https://n{i}:1", info, rng.uniform(0.2, 2.0)))
    return nodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    policy = RoutePolicy()
    print("| layers | nodes | routes found: whole spans | parts of spans | ms/token, whole | "
          "parts (same networks) | plan time, whole | parts |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for layers, count in ((30, 5), (30, 10), (30, 50), (80, 20), (80, 100), (80, 400)):
        rng = random.Random(args.seed * 1000 + layers * 7 + count)
        found_whole = found_parts = 0
        ms_whole, ms_parts, t_whole, t_parts = [], [], [], []
        for _ in range(args.networks):
            nodes = network(rng, count, layers)
            began = time.perf_counter()
            whole = whole_spans(nodes, layers, policy)
            t_whole.append(time.perf_counter() - began)
            began = time.perf_counter()
            try:
                chain = best_chain(nodes, 0, layers, policy)
            except RouteError:
                chain = None
            t_parts.append(time.perf_counter() - began)
            found_whole += whole is not None
            found_parts += chain is not None
            if whole is not None and chain is not None:
                ms_whole.append(whole)
                ms_parts.append(sum(policy.cost(h.node, h.end - h.start)[0] for h in chain))
        n = args.networks
        mean = (lambda xs: f"{statistics.fmean(xs):.1f}") if ms_whole else (lambda xs: "-")
        took = [f"{statistics.median(t) * 1e3:.2f} ms" for t in (t_whole, t_parts)]
        print(
            f"| {layers} | {count} | {found_whole / n:.0%} | {found_parts / n:.0%} | "
            f"{mean(ms_whole)} | {mean(ms_parts)} | {took[0]} | {took[1]} |"
        )


if __name__ == "__main__":
    main()
