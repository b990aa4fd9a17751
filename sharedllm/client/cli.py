"""``sharedllm generate`` and ``sharedllm chat``: stream an answer from a route of nodes."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from sharedllm.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    """Add this part's commands."""
    gen = sub.add_parser("generate", help="answer one prompt through the network")
    gen.add_argument("prompt")
    gen.add_argument("--no-chat-template", action="store_true", help="send the prompt as is")
    _common(gen)
    gen.set_defaults(func=_generate)
    chat = sub.add_parser("chat", help="talk with the model, one line per turn (Ctrl-D ends)")
    _common(chat)
    chat.set_defaults(func=_chat)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nodes", help="comma-separated node URLs (default: $SHAREDLLM_NODES)")
    p.add_argument("--trust", help="comma-separated node URLs: use only these")
    p.add_argument("--model", help="model id (default: the store's default model)")
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--link-delay-ms",
        type=float,
        default=0.0,
        help="TEST/BENCH ONLY: delay every outbound frame by this one-way latency",
    )


def _split(text: str | None) -> list[str]:
    return [u.strip() for u in (text or "").split(",") if u.strip()]


def _generator(args: argparse.Namespace) -> Any:
    from sharedllm.client.generate import TextGenerator
    from sharedllm.client.planner import RoutePolicy

    nodes = _split(args.nodes or os.environ.get("SHAREDLLM_NODES"))
    if not nodes:
        raise ConfigError("no nodes: pass --nodes URL,URL or set SHAREDLLM_NODES", field="nodes")
    trusted = _split(args.trust) or None
    return TextGenerator(
        nodes,
        model_id=args.model,
        policy=RoutePolicy(trusted=[u.rstrip("/") for u in trusted] if trusted else None),
        link_delay_ms=args.link_delay_ms,
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


def _generate(args: argparse.Namespace) -> int:
    async def main() -> None:
        async with _generator(args) as gen:
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

    asyncio.run(main())
    return 0


def _chat(args: argparse.Namespace) -> int:
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
                reply = await _stream(
                    gen, gen.chat(messages, max_tokens=args.max_tokens, sampling=sampling)
                )
                messages.append({"role": "assistant", "content": reply})

    asyncio.run(main())
    return 0
