"""Throughput of the data path against transformers' `generate` in one process, in one run.

Prints one table: tokens/s and time to first token for the baseline and for routes of 1, 2
and 3 local node processes; the per-hop overhead; the per-token latency with an injected
one-way link delay against the limit of a pushed pipeline, (hops + 1) x delay + compute;
and node start-to-ready with imported shards.

    SHAREDLLM_HOME=.state .venv/bin/python bench/throughput.py [--tokens 64] [--delay-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import torch

from sharedllm.client.generate import TextGenerator
from sharedllm.model.client_model import ClientModel
from sharedllm.model.store import ModelStore
from sharedllm.node.local import local_nodes, start_node

PROMPT = "Tell me a short story about a robot who learns to paint."
ROUTES = {1: ["0:30"], 2: ["0:15", "15:30"], 3: ["0:10", "10:20", "20:30"]}


def baseline(cm: ClientModel, tokens: int) -> tuple[float, float]:
    """(time to first token in s, steady tokens/s) of `generate` on the whole model."""
    from transformers import AutoModelForCausalLM

    from sharedllm.model.importer import default_gguf

    gguf = default_gguf()
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32, local_files_only=True
    ).eval()
    ids = torch.tensor([cm.prompt_ids(PROMPT)])
    mask = torch.ones_like(ids)

    def run(n: int) -> float:
        began = time.perf_counter()
        with torch.inference_mode():
            model.generate(
                ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False
            )
        return time.perf_counter() - began

    run(4)  # warm-up
    first = min(run(1) for _ in range(3))
    full = min(run(tokens) for _ in range(2))
    return first, (tokens - 1) / (full - first)


async def network(
    cm: ClientModel, urls: list[str], tokens: int, delay_ms: float = 0.0
) -> tuple[float, float]:
    """(time to first token in s, steady tokens/s) through the nodes at ``urls``."""
    async with TextGenerator(urls, client_model=cm, link_delay_ms=delay_ms) as gen:
        ids = cm.prompt_ids(PROMPT)
        async for _ in gen.token_ids(ids, 4, stop_at_eos=False):  # warm-up, and probes
            pass
        best: tuple[float, float] | None = None
        for _ in range(2):
            began = time.perf_counter()
            stamps = []
            async for _ in gen.token_ids(ids, tokens, stop_at_eos=False):
                stamps.append(time.perf_counter() - began)
            rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
            if best is None or rate > best[1]:
                best = (stamps[0], rate)
        return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    args = parser.parse_args()
    store = ModelStore()
    cm = ClientModel(store, store.manifest())

    rows: list[tuple[str, str, str, str]] = []
    first, rate = baseline(cm, args.tokens)
    base_ms = 1000.0 / rate
    rows.append(("transformers generate (1 process)", f"{rate:.1f}", f"{first * 1000:.0f}", "1.00"))
    per_token_ms: dict[int, float] = {}
    ready: list[float] = []
    for hops, spans in ROUTES.items():
        with local_nodes(spans) as nodes:
            ready += [n.ready_s for n in nodes]
            first, rate = asyncio.run(network(cm, [n.url for n in nodes], args.tokens))
        per_token_ms[hops] = 1000.0 / rate
        name = f"{hops} node{'s' if hops > 1 else ''} ({', '.join(spans)})"
        rows.append((name, f"{rate:.1f}", f"{first * 1000:.0f}", f"{rate * base_ms / 1000:.2f}"))

    print(
        f"\nGreedy, {args.tokens} new tokens, prompt of {len(cm.prompt_ids(PROMPT))} tokens, "
        f"loopback, torch threads={torch.get_num_threads()}\n"
    )
    print("| run | tokens/s | time to first token (ms) | ratio to baseline |")
    print("|---|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")

    print("\n| hops | ms/token | overhead vs baseline (ms) | per hop (ms) |")
    print("|---:|---:|---:|---:|")
    for hops, ms in per_token_ms.items():
        print(f"| {hops} | {ms:.1f} | {ms - base_ms:.1f} | {(ms - base_ms) / hops:.1f} |")

    d = args.delay_ms
    print(f"\nInjected one-way delay of {d:.0f} ms on every link (client and nodes):\n")
    print("| hops | ms/token measured | limit (hops+1) x d + compute | over the limit |")
    print("|---:|---:|---:|---:|")
    for hops in (1, 3):
        spans = ROUTES[hops]
        with local_nodes(spans, "--link-delay-ms", str(d)) as nodes:
            _, rate = asyncio.run(network(cm, [n.url for n in nodes], args.tokens, d))
        measured = 1000.0 / rate
        limit = (hops + 1) * d + per_token_ms[hops]
        print(f"| {hops} | {measured:.1f} | {limit:.1f} | {100 * (measured / limit - 1):+.1f}% |")

    alone = start_node("0:10")
    alone.stop()
    print("\nNode start to ready (spawn to the 'ready' line, shards imported):\n")
    print("| case | seconds |")
    print("|---|---:|")
    print(f"| one node alone (0:10) | {alone.ready_s:.2f} |")
    print(
        f"| nodes started together, 2-3 at once (median of {len(ready)}) | "
        f"{statistics.median(ready):.2f} |"
    )


if __name__ == "__main__":
    main()
