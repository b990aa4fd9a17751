"""Throughput of the data path against transformers' `generate` in one process, in one run.

Prints one table: tokens/s and time to first token for the baseline and for routes of 1, 2
and 3 local node processes; the per-hop overhead; the per-token latency with an injected
one-way link delay against the limit of a pushed pipeline, (hops + 1) x delay + compute;
and the same 3-node route as paid jobs (a signed job per answer, receipts per hop and step,
settlement on a local chain) against the unpaid path in the same rounds; the same route
over TLS links pinned to the nodes' keys (the default) against plain http (`--plaintext`
nodes), and with its middle hop reached through a relay, in the same rounds; and long
prompts (1k and 4k tokens by default) through `generate`, the unpaid and the paid 3-node
route, both over TLS. The 1- to 3-node rows run
over plain http, so that the per-hop overhead is the data path's own.
Node start-to-ready is bench/node_start.py.

    SHAREDLLM_HOME=.state .venv/bin/python bench/throughput.py [--tokens 64] [--delay-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import urllib.request

import torch

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.devnet import free_port
from sharedllm.client.generate import TextGenerator
from sharedllm.localnet import LocalNetwork
from sharedllm.model.client_model import ClientModel
from sharedllm.model.store import ModelStore
from sharedllm.node.local import local_nodes
from sharedllm.processes import Child, program

PROMPT = "Tell me a short story about a robot who learns to paint."
ROUTES = {1: ["0:30"], 2: ["0:15", "15:30"], 3: ["0:10", "10:20", "20:30"]}
ROUTE_SPANS = [(0, 10), (10, 20), (20, 30)]


class Baseline:
    """transformers' `generate` on the whole model, timed token by token with a streamer."""

    def __init__(self, cm: ClientModel) -> None:
        from transformers import AutoModelForCausalLM

        from sharedllm.model.importer import default_gguf

        gguf = default_gguf()
        self.model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32, local_files_only=True
        ).eval()
        # Fresh copies of the weights: straight out of the GGUF loader the first few dozen
        # steps run several times slower here, which would flatter the network runs.
        with torch.no_grad():
            for param in self.model.parameters():
                param.data = param.data.clone()
        self.ids = torch.tensor([cm.prompt_ids(PROMPT)])

    def run(self, tokens: int, ids: torch.Tensor | None = None) -> tuple[float, float]:
        """(time to first token in s, steady tokens/s), for ``ids`` or the short prompt."""
        ids = self.ids if ids is None else ids
        from transformers.generation.streamers import BaseStreamer

        stamps: list[float] = []

        class Clock(BaseStreamer):
            def put(self, value) -> None:
                stamps.append(time.perf_counter())

            def end(self) -> None:
                pass

        began = time.perf_counter()
        with torch.inference_mode():
            self.model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=tokens,
                min_new_tokens=tokens,
                do_sample=False,
                streamer=Clock(),
            )
        new = stamps[1:]  # the first call hands over the prompt
        return new[0] - began, (len(new) - 1) / (new[-1] - new[0])


async def network(
    cm: ClientModel,
    urls: list[str] | None,
    tokens: int,
    delay_ms: float = 0.0,
    payer=None,
    ids: list[int] | None = None,
) -> tuple[float, float]:
    """(time to first token in s, steady tokens/s) through the nodes at ``urls``, or through
    the registry's nodes as paid jobs when a ``payer`` is given."""
    nodes = urls if payer is None else payer.directory
    async with TextGenerator(nodes, client_model=cm, link_delay_ms=delay_ms, payer=payer) as gen:
        ids = ids or cm.prompt_ids(PROMPT)
        began = time.perf_counter()
        stamps = []
        async for _ in gen.token_ids(ids, tokens, stop_at_eos=False):
            stamps.append(time.perf_counter() - began)
        return stamps[0], (len(stamps) - 1) / (stamps[-1] - stamps[0])


def long_ids(cm: ClientModel, length: int) -> list[int]:
    """``length`` token ids of plain text (no chat template), the same in every round."""
    ids = cm.prompt_ids("The quick brown fox jumps over the lazy dog. " * length, chat=False)
    return ids[:length]


def client_ms(cm: ClientModel) -> float:
    """The client's own work per token: head, sampling and the next embedding."""
    hidden = torch.zeros(1, 1, cm.manifest.hidden_size)
    began = time.perf_counter()
    for _ in range(20):
        int(torch.argmax(cm.next_logits(hidden)))
        cm.embed([5])
    return (time.perf_counter() - began) / 20 * 1000.0


def node_ms(url: str) -> float:
    with urllib.request.urlopen(f"{url}/info", timeout=5) as resp:
        return float(json.load(resp)["ms_per_token"])


def best(runs: list[tuple[float, float]]) -> tuple[float, float]:
    """Fastest first token and fastest rate over the rounds: the machine is shared, and the
    best round is the one least disturbed by other work."""
    return min(r[0] for r in runs), max(r[1] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--long-prompts",
        default="1024,4096",
        help="prompt lengths in tokens for the long-prompt rows (comma-separated; '' for none)",
    )
    parser.add_argument("--long-tokens", type=int, default=16)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads in every process (default 1: on a shared 2-core machine a second "
        "thread that loses its core stalls every parallel op)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    threads = ("--threads", str(args.threads))
    store = ModelStore()
    cm = ClientModel(store, store.manifest())
    base = Baseline(cm)
    for _ in range(3):  # warm-up
        base.run(8)

    all_spans = [s for spans in ROUTES.values() for s in spans]
    runs: dict[object, list[tuple[float, float]]] = {"base": []}
    long_lengths = [int(x) for x in args.long_prompts.split(",") if x.strip()]
    for length in long_lengths:
        for kind in ("base", "unpaid", "paid"):
            runs[(kind, length)] = []
    relay_port, public = free_port(), free_port()
    scratch = tempfile.TemporaryDirectory()
    relay = Child([*program("sharedllm"), "relay", "--host", "127.0.0.1", "--port",
                   str(relay_port), "--ports", f"{public}-{public}",
                   "--db", f"{scratch.name}/ports.db"])  # fmt: skip
    relay.wait_ready("relay")
    with (
        local_nodes(all_spans, "--plaintext", *threads) as started,
        local_nodes(ROUTES[3], *threads) as tls_nodes,
        local_nodes(["10:20"], "--relay", f"127.0.0.1:{relay_port}", *threads) as (relayed,),
        LocalNetwork(ROUTE_SPANS, node_args=threads) as paid_net,
    ):
        client = dev_account(4)
        paid_net.chain.market.deposit(client, 100 * WEI_PER_SHARE, paid_net.chain.token)
        payer = paid_net.payer(client)
        asyncio.run(network(cm, None, 4, payer=payer))  # warm-up
        runs["paid"] = []
        by_span = {f"{n.span[0]}:{n.span[1]}": n.url for n in started}
        urls = {hops: [by_span[s] for s in spans] for hops, spans in ROUTES.items()}
        for hops in ROUTES:
            asyncio.run(network(cm, urls[hops], 4))  # warm-up
            runs[hops] = []
        tls_urls = [n.pinned_url for n in tls_nodes]
        asyncio.run(network(cm, tls_urls, 4))  # warm-up
        runs["tls"] = []
        relayed_urls = [tls_urls[0], relayed.pinned_url, tls_urls[2]]
        asyncio.run(network(cm, relayed_urls, 4))  # warm-up
        runs["relayed"] = []
        for _ in range(args.rounds):  # interleaved, so a burst of load hits every row alike
            runs["base"].append(base.run(args.tokens))
            for hops in ROUTES:
                runs[hops].append(asyncio.run(network(cm, urls[hops], args.tokens)))
            runs["paid"].append(asyncio.run(network(cm, None, args.tokens, payer=payer)))
            runs["tls"].append(asyncio.run(network(cm, tls_urls, args.tokens)))
            runs["relayed"].append(asyncio.run(network(cm, relayed_urls, args.tokens)))
            for length in long_lengths:
                ids = long_ids(cm, length)
                n = args.long_tokens
                runs[("base", length)].append(base.run(n, torch.tensor([ids])))
                runs[("unpaid", length)].append(asyncio.run(network(cm, tls_urls, n, ids=ids)))
                runs[("paid", length)].append(
                    asyncio.run(network(cm, None, n, payer=payer, ids=ids))
                )
        span_ms = {hops: sum(node_ms(u) for u in urls[hops]) for hops in ROUTES}
    relay.stop()
    scratch.cleanup()
    own_ms = client_ms(cm)

    first, rate = best(runs["base"])
    base_ms = 1000.0 / rate
    rows = [("transformers generate (1 process)", rate, first, 1.0)]
    per_token_ms: dict[int, float] = {}
    for hops, spans in ROUTES.items():
        first, rate = best(runs[hops])
        per_token_ms[hops] = 1000.0 / rate
        name = f"{hops} node{'s' if hops > 1 else ''} ({', '.join(spans)})"
        rows.append((name, rate, first, rate * base_ms / 1000.0))

    print(
        f"\nGreedy, {args.tokens} new tokens, prompt of {base.ids.shape[1]} tokens, loopback, "
        f"torch threads={torch.get_num_threads()}, best of {args.rounds} interleaved rounds\n"
    )
    print("| run | tokens/s | time to first token (ms) | ratio to baseline |")
    print("|---|---:|---:|---:|")
    for name, rate, first, ratio in rows:
        print(f"| {name} | {rate:.1f} | {first * 1000:.0f} | {ratio:.2f} |")

    paid_rate, tls_rate = best(runs["paid"])[1], best(runs["tls"])[1]
    print("\nPaid jobs against the unpaid path, 3 nodes (0:10, 10:20, 20:30), both over TLS,")
    print("same rounds:\n")
    print("| run | tokens/s | ratio to unpaid |")
    print("|---|---:|---:|")
    print(f"| unpaid | {tls_rate:.1f} | 1.00 |")
    print(f"| paid (signed job, receipts, settlement) | {paid_rate:.1f} | "
          f"{paid_rate / tls_rate:.2f} |")  # fmt: skip

    print("\nLinks encrypted with TLS 1.3 and pinned to the nodes' keys, 3 nodes, same rounds:\n")
    print("| run | tokens/s | ratio to plain http |")
    print("|---|---:|---:|")
    print(f"| plain http | {rows[3][1]:.1f} | 1.00 |")
    print(f"| TLS, pinned keys | {tls_rate:.1f} | {tls_rate / rows[3][1]:.2f} |")

    relayed_rate = best(runs["relayed"])[1]
    print("\nThe middle hop (10:20) reached through a relay on loopback (`sharedllm relay`), TLS")
    print("end to end, against the same route with every hop direct, same rounds:\n")
    print("| run | tokens/s | ms/token | ratio to direct |")
    print("|---|---:|---:|---:|")
    print(f"| direct, TLS | {tls_rate:.1f} | {1000 / tls_rate:.1f} | 1.00 |")
    print(f"| middle hop relayed | {relayed_rate:.1f} | {1000 / relayed_rate:.1f} | "
          f"{relayed_rate / tls_rate:.2f} |")  # fmt: skip

    print(f"\nPer-token time split (client head+sampling+embedding: {own_ms:.1f} ms):\n")
    print("| hops | ms/token | vs baseline (ms) | node compute (ms) | overhead per hop (ms) |")
    print("|---:|---:|---:|---:|---:|")
    for hops, ms in per_token_ms.items():
        direct = (ms - span_ms[hops] - own_ms) / hops
        print(f"| {hops} | {ms:.1f} | {ms - base_ms:+.1f} | {span_ms[hops]:.1f} | {direct:.1f} |")

    d = args.delay_ms
    print(f"\nInjected one-way delay of {d:.0f} ms on every link (client and nodes), against")
    print(f"the same route without delay in the same {args.rounds} interleaved rounds:\n")
    print("| hops | ms/token, no delay | ms/token, delay | limit (hops+1) x d + no-delay | over |")
    print("|---:|---:|---:|---:|---:|")
    for hops in (1, 3):
        with (
            local_nodes(ROUTES[hops], *threads) as plain_nodes,
            local_nodes(ROUTES[hops], "--link-delay-ms", str(d), *threads) as delayed_nodes,
        ):
            plain = [n.pinned_url for n in plain_nodes]
            delayed = [n.pinned_url for n in delayed_nodes]
            asyncio.run(network(cm, plain, 4))  # warm-up
            asyncio.run(network(cm, delayed, 4, d))
            plain_runs, delayed_runs = [], []
            for _ in range(args.rounds):  # interleaved: a burst of load hits both alike
                plain_runs.append(asyncio.run(network(cm, plain, args.tokens)))
                delayed_runs.append(asyncio.run(network(cm, delayed, args.tokens, d)))
        plain_ms = 1000.0 / best(plain_runs)[1]
        measured = 1000.0 / best(delayed_runs)[1]
        limit = (hops + 1) * d + plain_ms
        print(
            f"| {hops} | {plain_ms:.1f} | {measured:.1f} | {limit:.1f} | "
            f"{100 * (measured / limit - 1):+.1f}% |"
        )

    if long_lengths:
        print(f"\nLong prompts, {args.long_tokens} new tokens, 3 nodes, same rounds:\n")
        print(
            "| prompt tokens | run | time to first token (ms) | tokens/s | first token vs generate"
            " |"
        )
        print("|---:|---|---:|---:|---:|")
        for length in long_lengths:
            base_first, _ = best(runs[("base", length)])
            for kind, name in (("base", "generate"), ("unpaid", "unpaid"), ("paid", "paid")):
                first, rate = best(runs[(kind, length)])
                print(
                    f"| {length} | {name} | {first * 1000:.0f} | {rate:.1f} | "
                    f"{first / base_first:.2f} |"
                )


if __name__ == "__main__":
    main()
