"""Node start to ready, and node memory, with and without a node host, in one run.

The baseline is the floor of any process that runs a span: a fresh interpreter importing
torch and the model's transformers modules, and nothing else. Against it, in interleaved
rounds: ``sharedllm-node run --no-host`` (the node imports everything itself) and the same
command while a node host (``sharedllm-node host``) is listening, which forks the node from
its already-imported libraries. Times are wall clock from spawning the command to its
"ready" line (shards already imported), the median of the rounds. Memory is each idle node's
proportional set size (PSS: a page shared by k processes counts 1/k to each), after ready.
Last, greedy tokens/s through one node serving all 30 layers, own process against forked, in
interleaved rounds: a forked node must compute as fast as any other.

    SHAREDLLM_HOME=.state .venv/bin/python bench/node_start.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sharedllm.client.generate import TextGenerator
from sharedllm.model.client_model import ClientModel
from sharedllm.model.store import ModelStore
from sharedllm.node.host_wire import SOCKET_ENV
from sharedllm.node.local import LocalNode, local_nodes, spawn_node_host, start_node

SPAN = "0:10"
TOGETHER = ["0:10", "10:20", "20:30"]
FLOOR = "import torch; import transformers.models.llama.modeling_llama"
PROMPT = "Tell me a short story about a robot who learns to paint."
TOKENS = 48


def library_floor_s() -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", FLOOR], check=True)
    return time.perf_counter() - began


def memory_kib(pid: int) -> tuple[int, int, int]:
    """(RSS, PSS, USS) in KiB; USS, the pages no other process maps, is what the node adds."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0])
    return fields["Rss"], fields["Pss"], fields["Private_Clean"] + fields["Private_Dirty"]


def started_together(spans: list[str], *extra: str) -> tuple[float, list[tuple[int, int, int]]]:
    """Seconds until the last of the nodes is ready, and each node's (RSS, PSS)."""
    with local_nodes(spans, *extra) as nodes:
        time.sleep(1.0)  # let the warm-up step's transient buffers go
        return max(n.ready_s for n in nodes), [memory_kib(n.pid) for n in nodes]


def one(*extra: str) -> LocalNode:
    node = start_node(SPAN, *extra)
    node.stop()
    return node


async def tokens_per_s(cm: ClientModel, url: str, tokens: int) -> float:
    """Steady greedy tokens/s through one node (the first token, a prefill, left out)."""
    async with TextGenerator([url], client_model=cm) as gen:
        count, began = 0, 0.0
        async for _ in gen.token_ids(cm.prompt_ids(PROMPT), tokens):
            count += 1
            if count == 1:
                began = time.perf_counter()
        return (count - 1) / (time.perf_counter() - began)


def compute_rates(socket_file: Path, rounds: int) -> tuple[float, float]:
    """Best tokens/s of a 0:30 node in its own process and of one forked by the host."""
    store = ModelStore()
    cm = ClientModel(store, store.manifest())
    with local_nodes(["0:30"], "--no-host", "--threads", "1") as (own,):
        os.environ[SOCKET_ENV] = str(socket_file)
        try:
            with local_nodes(["0:30"], "--threads", "1") as (forked,):
                assert forked.pid != forked.process.pid, "the node did not come from the host"
                asyncio.run(tokens_per_s(cm, own.pinned_url, 8))  # warm-up
                asyncio.run(tokens_per_s(cm, forked.pinned_url, 8))
                runs: dict[str, list[float]] = {"own": [], "forked": []}
                for _ in range(rounds):
                    runs["own"].append(asyncio.run(tokens_per_s(cm, own.pinned_url, TOKENS)))
                    runs["forked"].append(asyncio.run(tokens_per_s(cm, forked.pinned_url, TOKENS)))
        finally:
            os.environ.pop(SOCKET_ENV)
    return max(runs["own"]), max(runs["forked"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.pop(SOCKET_ENV, None)

    floor, cold, hosted, cold3, hosted3 = [], [], [], [], []
    cold_mem: list[tuple[int, int, int]] = []
    hosted_mem: list[tuple[int, int, int]] = []
    folder = Path(tempfile.mkdtemp(prefix="sharedllm-bench-"))
    host = spawn_node_host(folder / "node.sock")
    try:
        host.wait_ready("node host")
        preload_s = float(host.ready_line.split("preload_s=")[1].split()[0])
        for _ in range(args.rounds):  # interleaved: a burst of outside load hits every row
            floor.append(library_floor_s())
            cold.append(one("--no-host").ready_s)
            os.environ[SOCKET_ENV] = str(folder / "node.sock")
            try:
                node = one()
                assert node.pid != node.process.pid, "the node did not come from the host"
                hosted.append(node.ready_s)
                seconds, mem = started_together(TOGETHER)
                hosted3.append(seconds)
                hosted_mem = mem
            finally:
                os.environ.pop(SOCKET_ENV)
            seconds, mem = started_together(TOGETHER, "--no-host")
            cold3.append(seconds)
            cold_mem = mem
        host_mem = memory_kib(host.process.pid)
        own_rate, forked_rate = compute_rates(folder / "node.sock", args.rounds)
    finally:
        host.stop()

    med = statistics.median
    print(f"\nNode start to ready, spawn to the 'ready' line, shards imported; median of "
          f"{args.rounds} interleaved rounds, {os.cpu_count()} cores:\n")  # fmt: skip
    print("| case | seconds | vs the library floor |")
    print("|---|---:|---:|")
    print(f"| baseline: fresh python importing torch + transformers' Llama | {med(floor):.2f} | "
          f"1.00 |")  # fmt: skip
    for name, values in [
        (f"one node ({SPAN}), own process (--no-host)", cold),
        (f"one node ({SPAN}), forked by a node host", hosted),
        (f"three nodes ({', '.join(TOGETHER)}) at once, own processes", cold3),
        ("three nodes at once, forked by a node host", hosted3),
    ]:
        print(f"| {name} | {med(values):.2f} | {med(values) / med(floor):.2f} |")
    print(f"| the node host's own start (imports, once per machine) | {preload_s:.2f} | "
          f"{preload_s / med(floor):.2f} |")  # fmt: skip

    print("\nMemory of three idle nodes (0:10, 10:20, 20:30), MiB per node; the three in all:\n")
    print("| case | RSS | PSS | USS (its own pages) | PSS of the three | USS of the three |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, mem in [("own processes", cold_mem), ("forked by a node host", hosted_mem)]:
        rss, pss, uss = (med([m[i] for m in mem]) / 1024 for i in range(3))
        total_pss, total_uss = (sum(m[i] for m in mem) / 1024 for i in (1, 2))
        print(f"| {name} | {rss:.0f} | {pss:.0f} | {uss:.0f} | {total_pss:.0f} | {total_uss:.0f} |")
    rss, pss, uss = (v / 1024 for v in host_mem)
    print(f"| the node host itself | {rss:.0f} | {pss:.0f} | {uss:.0f} | | |")

    print(f"\nGreedy tokens/s through one node (0:30, --threads 1), best of {args.rounds} "
          f"interleaved rounds of {TOKENS} tokens:\n")  # fmt: skip
    print("| node | tokens/s | ratio to own process |")
    print("|---|---:|---:|")
    print(f"| own process | {own_rate:.2f} | 1.00 |")
    print(f"| forked by a node host | {forked_rate:.2f} | {forked_rate / own_rate:.2f} |")


if __name__ == "__main__":
    main()
