"""``sharedllm generate`` and ``sharedllm chat``: stream an answer from a route of nodes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import click

from sharedllm.chain.cli_common import account_params, chain_params
from sharedllm.cli_base import Args, argument, command, flag, option
from sharedllm.errors import ConfigError, SharedLLMError
from sharedllm.model.device import DEVICES


def register(group: click.Group) -> None:
    """Add ``generate`` and ``chat``."""
    group.add_command(
        command(
            "generate",
            "sharedllm.client.cli:generate",
            "Answer one prompt through the network.\n\n"
            "With an account (--keystore or --dev-account), every answer is a signed job "
            "paid from its escrow.",
            [
                argument("prompt"),
                flag("--no-chat-template", help="send the prompt as is"),
                *_common(),
            ],
        )
    )
    group.add_command(
        command(
            "chat",
            "sharedllm.client.cli:chat",
            "Talk with the model, one line per turn (Ctrl-D ends).\n\n"
            "With an account (--keystore or --dev-account), every answer is a signed job "
            "paid from its escrow.",
            _common(),
        )
    )


def _common() -> list[click.Parameter]:
    return [
        option(
            "--nodes",
            help="comma-separated node URLs (default: $SHAREDLLM_NODES; with an account, the "
            "registry's active nodes)",
        ),
        *chain_params(),
        *account_params(),
        option("--trust", help="comma-separated node URLs: use only these"),
        option("--model", help="model id (default: the store's default model)"),
        option("--max-tokens", type=int, default=128, help="longest answer, in tokens"),
        option("--temperature", type=float, default=0.0, help="0 = greedy"),
        option("--top-p", type=float, default=1.0, help="nucleus sampling's probability mass"),
        option("--seed", type=int, help="sampling seed (default: a random one)"),
        option(
            "--device",
            type=click.Choice(DEVICES),
            default="cpu",
            help="where the embedding and the head run: cpu, auto, cuda or mps",
        ),
        option(
            "--link-delay-ms",
            type=float,
            default=0.0,
            help="TEST/BENCH ONLY: delay every outbound frame by this one-way latency",
        ),
    ]


def _split(text: str | None) -> list[str]:
    return [u.strip() for u in (text or "").split(",") if u.strip()]


def _generator(args: Args) -> Any:
    from sharedllm.client.generate import TextGenerator
    from sharedllm.client.planner import RoutePolicy
    from sharedllm.model.device import resolve_device

    device = resolve_device(args.device)  # a missing device fails before anything is paid

    nodes: Any = _split(args.nodes or os.environ.get("SHAREDLLM_NODES"))
    payer = None
    if args.dev_account is not None or args.keystore is not None:
        payer = _payer(args)
        nodes = nodes or payer.directory
    if not nodes:
        raise ConfigError(
            "no nodes: pass --nodes URL,URL, set SHAREDLLM_NODES, or pay with an account "
            "(--dev-account N / --keystore FILE) to use the registry's nodes",
            field="nodes",
        )
    trusted = _split(args.trust) or None
    return TextGenerator(
        nodes,
        model_id=args.model,
        policy=RoutePolicy(trusted=[u.rstrip("/") for u in trusted] if trusted else None),
        link_delay_ms=args.link_delay_ms,
        payer=payer,
        device=device,
    )


def _payer(args: Args) -> Any:
    from sharedllm.chain.cli_common import open_chain, signer
    from sharedllm.client.job_book import JobBook
    from sharedllm.client.payer import Payer
    from sharedllm.client.registry_directory import RegistryDirectory

    chain = open_chain(args)
    account = signer(args, chain)
    return Payer(chain, account, RegistryDirectory(chain, args.model), JobBook())


def _show_jobs(gen: Any, first: int, args: Args) -> None:
    """After a paid answer: each job's id, route, tokens and cost (failover adds a job)."""
    from sharedllm.chain.amounts import format_share

    payer = gen.payer
    if payer is None:
        return
    jobs = payer.jobs[first:]
    if args.json:
        print(json.dumps({"jobs": [
            {"job_id": p.signed.job_id, "tokens": p.tokens, "cost": str(p.cost),
             "route": [{"url": h.url, "node": h.address, "span": [h.start, h.end]}
                       for h in p.hops]}
            for p in jobs
        ]}), file=sys.stderr, flush=True)  # fmt: skip
        return
    market = payer.chain.market
    # The last hop submits a moment after the answer: count what is not on-chain yet, so the
    # escrow shown is the one left once these jobs are charged.
    uncharged = sum(
        p.cost for p in jobs if p.tokens and market.get_job(p.signed.job_id).status == "None"
    )
    left = market.escrow_of(payer.address) - uncharged
    for paid in jobs:
        if not paid.tokens:
            continue
        print(
            f"job {paid.signed.job_id}: {paid.tokens} positions (prompt and answer) x "
            f"{format_share(paid.price_per_token)} SHARE = {format_share(paid.cost)} SHARE "
            f"(escrow left {format_share(left)} SHARE; "
            "the last hop commits it on-chain, see `sharedllm jobs`)",
            file=sys.stderr,
            flush=True,
        )


def _show_route(gen: Any, shown: list) -> None:
    session = gen.session
    if session is None:
        return
    if not shown and session.route:
        hops = " -> ".join(f"{h.url} [{h.start}:{h.end}]" for h in session.route)
        print(f"route: {hops}", file=sys.stderr, flush=True)
        shown.append(True)
    while len(shown) - 1 < len(session.failovers):
        failed, route = session.failovers[len(shown) - 1]
        hops = " -> ".join(f"{h.url} [{h.start}:{h.end}]" for h in route)
        print(f"\nfailover: {failed} replaced; route: {hops}", file=sys.stderr, flush=True)
        shown.append(True)


async def _stream(gen: Any, pieces: Any) -> str:
    shown: list = []
    text = []
    async for piece in pieces:
        _show_route(gen, shown)
        text.append(piece)
        print(piece, end="", flush=True)
    print(flush=True)
    return "".join(text)


def generate(args: Args) -> int:
    async def main() -> None:
        async with _generator(args) as gen:
            first = len(gen.payer.jobs) if gen.payer else 0
            await _stream(
                gen,
                gen.generate(
                    args.prompt,
                    max_tokens=args.max_tokens,
                    temperature=args.temperature,
                    top_p=args.top_p,
                    seed=args.seed,
                    chat_template=not args.no_chat_template,
                ),
            )
            _show_jobs(gen, first, args)

    asyncio.run(main())
    return 0


def chat(args: Args) -> int:
    from sharedllm.model.sampling import SamplingParams

    async def main() -> None:
        sampling = SamplingParams(args.temperature, args.top_p, args.seed)
        messages: list[dict] = []
        async with _generator(args) as gen:
            while True:
                try:
                    line = await asyncio.to_thread(input, "> ")
                except EOFError:
                    print()
                    return
                if not line.strip():
                    continue
                messages.append({"role": "user", "content": line})
                first = len(gen.payer.jobs) if gen.payer else 0
                try:
                    reply = await _stream(
                        gen, gen.chat(messages, max_tokens=args.max_tokens, sampling=sampling)
                    )
                except SharedLLMError as exc:
                    # One failed turn does not end the conversation: the history stays as it
                    # was before the question, which can be asked again.
                    messages.pop()
                    print(f"[{exc.code}] {exc.message}", file=sys.stderr, flush=True)
                    continue
                finally:
                    _show_jobs(gen, first, args)
                messages.append({"role": "assistant", "content": reply})

    asyncio.run(main())
    return 0
