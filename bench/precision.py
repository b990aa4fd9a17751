"""What a lighter precision buys and costs, against float32, in one run.

Per precision of the default model (each its own model id; int8 is imported here if the
store lacks it): the bytes of one decoder layer on disk and in memory, the steady tokens/s
and time to first token of a route of three local node processes (0:10, 10:20, 20:30) in
interleaved rounds, and the greedy answers' agreement with float32 on a fixed prompt set
(identical answers, and the share of tokens before the first difference).

    SHAREDLLM_HOME=.state .venv/bin/python bench/precision.py [--rounds 3] [--tokens 32]
        [--prompts 20] [--answer-tokens 16]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics

import torch
from detection import PROMPTS
from throughput import ROUTES, best, network

from sharedllm.model.client_model import ClientModel
from sharedllm.model.importer import import_model
from sharedllm.model.manifest import FLOAT32, INT8, Manifest
from sharedllm.model.span import SpanRunner
from sharedllm.model.store import ModelStore
from sharedllm.node.local import local_nodes
from sharedllm.testing.calibrate import answer


def main() -> None:
    args = _parse()
    store = ModelStore()
    float32 = store.manifest()
    manifests = {FLOAT32: float32, INT8: import_model(store, precision=INT8).manifest}
    client = ClientModel(store, float32)
    spans = [tuple(int(x) for x in s.split(":")) for s in ROUTES[3]]
    runners = {p: [SpanRunner(store, m, a, b) for a, b in spans] for p, m in manifests.items()}

    print(f"\n{'precision':<10}{'model id':<14}{'layer on disk':>15}{'in memory':>12}")
    for precision, manifest in manifests.items():
        disk = statistics.mean(store.shard_path(h).stat().st_size for h in manifest.layer_shards)
        memory = _layer_bytes(runners[precision][0].layers[0])
        print(f"{precision:<10}{manifest.model_id[:12]:<14}{disk / 2**20:>11.2f} MiB"
              f"{memory / 2**20:>8.2f} MiB")  # fmt: skip

    speeds = _speeds(manifests, args.rounds, args.tokens)
    base = speeds[FLOAT32][1]
    print(f"\n{'precision':<10}{'tokens/s':>10}{'÷ float32':>11}{'first token ms':>16}   "
          f"(3 nodes, best of {args.rounds} interleaved rounds, {args.tokens} tokens)")  # fmt: skip
    for precision, (first, rate) in speeds.items():
        print(f"{precision:<10}{rate:>10.1f}{rate / base:>11.2f}{first * 1000:>16.0f}")

    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(args.prompts)]
    reference = [answer(client, runners[FLOAT32], p, args.answer_tokens).tokens for p in prompts]
    print(f"\n{'precision':<10}{'identical answers':>19}{'tokens before the first difference':>36}")
    for precision in manifests:
        answers = [answer(client, runners[precision], p, args.answer_tokens).tokens
                   for p in prompts]  # fmt: skip
        same = sum(a == b for a, b in zip(answers, reference, strict=True))
        agreed = sum(_common_prefix(a, b) for a, b in zip(answers, reference, strict=True))
        total = sum(len(b) for b in reference)
        print(f"{precision:<10}{same:>12}/{len(prompts):<6}{agreed:>24}/{total} "
              f"= {100 * agreed / total:.0f}%")  # fmt: skip


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--tokens", type=int, default=32, help="new tokens per timed answer")
    p.add_argument("--prompts", type=int, default=20, help="prompts compared with float32")
    p.add_argument("--answer-tokens", type=int, default=16, help="greedy tokens per prompt")
    return p.parse_args()


def _layer_bytes(layer: torch.nn.Module) -> int:
    """Bytes a loaded layer's weights hold, counting a quantized weight's own tensors."""
    total = 0
    for tensor in [*layer.parameters(), *layer.buffers()]:
        inner = getattr(tensor, "__tensor_flatten__", None)
        parts = [getattr(tensor, n) for n in inner()[0]] if inner else [tensor]
        total += sum(t.numel() * t.element_size() for t in parts if t is not None)
    return total


def _speeds(manifests: dict[str, Manifest], rounds: int, tokens: int) -> dict[str, tuple]:
    """Three nodes per precision, all running; the rounds alternate between precisions."""
    runs: dict[str, list] = {p: [] for p in manifests}
    with (
        local_nodes(ROUTES[3], "--plaintext", "--model", manifests[FLOAT32].model_id) as f32,
        local_nodes(ROUTES[3], "--plaintext", "--model", manifests[INT8].model_id) as i8,
    ):
        urls = {FLOAT32: [n.url for n in f32], INT8: [n.url for n in i8]}
        store = ModelStore()
        for _ in range(rounds):
            for precision, manifest in manifests.items():
                client = ClientModel(store, manifest)
                runs[precision].append(asyncio.run(network(client, urls[precision], tokens)))
    return {p: best(r) for p, r in runs.items()}


def _common_prefix(a: list[int], b: list[int]) -> int:
    pairs = enumerate(zip(a, b, strict=False))
    return next((i for i, (x, y) in pairs if x != y), min(len(a), len(b)))


if __name__ == "__main__":
    main()
