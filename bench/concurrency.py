"""Many clients at once: the network's total throughput against `generate` with a batch.

A route of three local nodes (0:10, 10:20, 20:30), every process on one torch thread. For
each N, N client processes (started beforehand, each with the model's embedding and head
loaded) are released together and each asks for the same number of greedy tokens; the
network's total is N x tokens over the wall time from release to the last token. The same
prompts go through nodes that batch concurrent sessions (the default) and nodes started
with `--max-batch 1` (every step alone), in interleaved rounds, and through transformers'
`generate` with a left-padded batch of the N prompts in one process, on one thread and on
two. Per-client latency is the time between a client's tokens (p50, p95 over every client
and token) and its time to first token. The last columns count clients whose greedy tokens
are the same through the batching nodes as through the lone-step nodes, and the CPU each
client process spends per token (its own head, sampling and HTTP): every client here shares
the two cores with the nodes, where `generate` computes one head for the whole batch.

    SHAREDLLM_HOME=.state .venv/bin/python bench/concurrency.py [--clients 1,4,8,16]
        [--tokens 32] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time

PROMPTS = [
    "Tell me a short story about a robot who learns to paint.",
    "Explain why the sky is blue to a ten-year-old.",
    "Write a haiku about the first snow of winter.",
    "What are three good habits for learning a new language?",
    "Describe a quiet morning in a small fishing village.",
    "Give me a recipe idea that uses leftover rice.",
    "Why do cats like to sit in boxes?",
    "Summarise the plot of a detective story in two sentences.",
]


def prompt(i: int) -> str:
    base = PROMPTS[i % len(PROMPTS)]
    return base if i < len(PROMPTS) else f"{base} (Version {i // len(PROMPTS) + 1}.)"


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def client_main(urls: list[str], index: int, tokens: int) -> None:
    """One client process: load, say ready, wait for the go line, generate, print stamps."""
    import torch

    torch.set_num_threads(1)
    from sharedllm.client.generate import TextGenerator
    from sharedllm.model.client_model import ClientModel
    from sharedllm.model.store import ModelStore

    store = ModelStore()
    cm = ClientModel(store, store.manifest())
    ids = cm.prompt_ids(prompt(index))

    async def run() -> dict:
        async with TextGenerator(urls, client_model=cm) as gen:
            print("ready", flush=True)
            sys.stdin.readline()
            cpu0 = _cpu_s()
            began = time.perf_counter()
            stamps, out = [], []
            async for token in gen.token_ids(ids, tokens, stop_at_eos=False):
                stamps.append(time.perf_counter() - began)
                out.append(int(token))
            return {
                "stamps": stamps,
                "tokens": out,
                "wall_start": time.time() - stamps[-1],
                "cpu": _cpu_s() - cpu0,
            }

    print(json.dumps(asyncio.run(run())), flush=True)


def run_clients(urls: list[str], count: int, tokens: int) -> list[dict]:
    """Start ``count`` client processes, release them together, collect their stamps."""
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--client",
                ",".join(urls),
                "--index",
                str(i),
                "--tokens",
                str(tokens),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )  # fmt: skip
        for i in range(count)
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            line = p.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"a client did not start: {line!r}")
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = []
        for p in procs:
            out, _ = p.communicate(timeout=600)
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def summary(results: list[dict], tokens: int) -> dict:
    wall = max(r["wall_start"] + r["stamps"][-1] for r in results) - min(
        r["wall_start"] for r in results
    )
    gaps = [b - a for r in results for a, b in zip(r["stamps"], r["stamps"][1:], strict=False)]
    gaps.sort()
    return {
        "total": len(results) * tokens / wall,
        "p50": statistics.median(gaps) * 1000,
        "p95": gaps[min(len(gaps) - 1, int(0.95 * len(gaps)))] * 1000,
        "ttft": statistics.median(r["stamps"][0] for r in results) * 1000,
        "tokens": [r["tokens"] for r in results],
        "client_ms": statistics.mean(r["cpu"] for r in results) / tokens * 1000,
    }


def generate_rate(count: int, tokens: int, threads: int, device: str = "cpu") -> float:
    """Total tokens/s of `generate` on a left-padded batch of the prompts, one process."""
    code = f"""
import time, torch
torch.set_num_threads({threads})
from sharedllm.model.device import resolve_device
device = resolve_device({device!r})
from transformers import AutoModelForCausalLM, AutoTokenizer
from sharedllm.model.importer import default_gguf
from sharedllm.model.client_model import ClientModel
from sharedllm.model.store import ModelStore
import bench.concurrency as b
gguf = default_gguf()
model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
    dtype=torch.float32, local_files_only=True).eval()
with torch.no_grad():
    for p in model.parameters():
        p.data = p.data.clone()
model = model.to(device)
store = ModelStore()
cm = ClientModel(store, store.manifest())
rows = [cm.prompt_ids(b.prompt(i)) for i in range({count})]
width = max(map(len, rows))
ids = torch.tensor([[0] * (width - len(r)) + r for r in rows], device=device)
mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
with torch.inference_mode():
    model.generate(ids[:1, -8:], attention_mask=mask[:1, -8:], max_new_tokens=4, do_sample=False)
    began = time.perf_counter()
    model.generate(ids, attention_mask=mask, max_new_tokens={tokens}, min_new_tokens={tokens},
                   do_sample=False, pad_token_id=0)
    print({count} * {tokens} / (time.perf_counter() - began))
"""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root,
        env={**os.environ, "PYTHONPATH": root},
    )  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,4,8,16")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--device", default="cpu", help="the nodes' and the baseline's device (bench/gpu_check.sh)"
    )
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args.client.split(","), args.index, args.tokens)
        return

    from sharedllm.node.local import local_nodes

    counts = [int(n) for n in args.clients.split(",")]
    spans = ["0:10", "10:20", "20:30"]
    rows = []
    with (
        local_nodes(spans, "--threads", "1", "--device", args.device) as batching,
        local_nodes(spans, "--threads", "1", "--device", args.device, "--max-batch", "1") as alone,
    ):
        for n in counts:
            runs: dict[str, list[dict]] = {"batched": [], "alone": []}
            base: dict[int, list[float]] = {1: [], 2: []}
            for _ in range(args.rounds):
                for name, nodes in (("batched", batching), ("alone", alone)):
                    urls = [x.pinned_url for x in nodes]
                    runs[name].append(summary(run_clients(urls, n, args.tokens), args.tokens))
                for threads in (1, 2):
                    base[threads].append(generate_rate(n, args.tokens, threads, args.device))
            best = {k: max(v, key=lambda s: s["total"]) for k, v in runs.items()}
            same = sum(
                a == b for a, b in zip(best["batched"]["tokens"], best["alone"]["tokens"],
                                       strict=True)
            )  # fmt: skip
            gen1, gen2 = max(base[1]), max(base[2])
            rows.append((n, best["batched"], best["alone"], gen1, gen2, same))
            print(f"N={n} done", file=sys.stderr, flush=True)

    print(f"\n{args.tokens} new tokens per client, greedy, best of {args.rounds} rounds\n")
    print(
        "| N clients | network, batching (tokens/s) | per client | p50 ms/token | p95 ms/token "
        "| first token p50 (ms) | network, steps alone | `generate` batch N, 1 thread "
        "| 2 threads | batching ÷ generate (best) | same greedy tokens "
        "| client CPU ms/token |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, bat, alone, gen1, gen2, same in rows:
        print(
            f"| {n} | {bat['total']:.1f} | {bat['total'] / n:.1f} | {bat['p50']:.0f} "
            f"| {bat['p95']:.0f} | {bat['ttft']:.0f} | {alone['total']:.1f} | {gen1:.1f} "
            f"| {gen2:.1f} | {bat['total'] / max(gen1, gen2):.2f} | {same}/{n} "
            f"| {bat['client_ms']:.1f} |"
        )


if __name__ == "__main__":
    main()
