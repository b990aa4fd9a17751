"""``sharedllm serve``: the OpenAI-compatible API and the web page; ``serve keys ...``: budgets."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import sys
from pathlib import Path

from sharedllm.chain.cli_common import (
    AMOUNT_HELP,
    add_account_options,
    add_chain_options,
    chain_command,
    emit,
    open_chain,
    signer,
)
from sharedllm.errors import ConfigError
from sharedllm.model.device import DEVICES
from sharedllm.stop_signals import stop_event


def register(sub: argparse._SubParsersAction) -> None:
    """Add this part's commands."""
    serve = sub.add_parser(
        "serve",
        help="serve the OpenAI-compatible API and the web page",
        # argparse would show the optional `keys` subcommand as if it were required.
        usage="sharedllm serve [options]\n       sharedllm serve keys {add,list,revoke} ...",
        description="Serve /v1 (OpenAI-compatible, paid from the operator's account within "
        "each API key's budget) and the web page (paid by the visitor's own wallet).",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    serve.add_argument("--model", help="model id (default: the store's default model)")
    serve.add_argument(
        "--models-dir", type=Path, help="model store (default: $SHAREDLLM_HOME/models)"
    )
    serve.add_argument(
        "--keys", type=Path, help="API key database (default: $SHAREDLLM_HOME/gateway/keys.db)"
    )
    serve.add_argument(
        "--device",
        choices=DEVICES,
        default="cpu",
        help="where the embedding and the head run: cpu (default), auto, cuda or mps",
    )
    operator = serve.add_argument_group(
        "operator", "the account whose escrow pays for API requests (none: web page only)"
    )
    add_chain_options(operator)
    add_account_options(operator)
    serve.set_defaults(func=_serve)

    keys = serve.add_subparsers(dest="serve_command", metavar="keys")
    group = keys.add_parser("keys", help="manage API keys and their budgets")
    actions = group.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="create a key with a budget; prints the key once")
    add.add_argument("name")
    add.add_argument("--budget", required=True, help=f"what the key may spend, {AMOUNT_HELP}")
    add.set_defaults(func=_keys_add)
    show = actions.add_parser("list", help="every key: budget, spent, held, left")
    show.set_defaults(func=_keys_list)
    revoke = actions.add_parser("revoke", help="refuse a key from now on")
    revoke.add_argument("name")
    revoke.set_defaults(func=_keys_revoke)
    for action in (add, show, revoke):
        # SUPPRESS, so a --keys given before `keys` is not reset by the subcommand's default.
        action.add_argument("--keys", type=Path, default=argparse.SUPPRESS, help="key database")
        action.add_argument("--json", action="store_true", default=argparse.SUPPRESS)


def _keys(args: argparse.Namespace):  # noqa: ANN202 - ApiKeys, imported lazily
    from sharedllm.gateway.api_keys import ApiKeys

    return ApiKeys(args.keys)


def _key_json(key) -> dict:  # noqa: ANN001
    return {
        "name": key.name, "key_id": key.key_id, "budget": str(key.budget),
        "spent": str(key.spent), "reserved": str(key.reserved), "remaining": str(key.remaining),
        "revoked": not key.active,
    }  # fmt: skip


def _keys_add(args: argparse.Namespace) -> int:
    from sharedllm.chain.amounts import format_share, parse_share

    budget = parse_share(args.budget, "budget")
    if budget <= 0:
        raise ConfigError("--budget: a key needs a budget above 0 SHARE", field="budget")
    key, secret = _keys(args).add(args.name, budget)
    emit(
        args,
        {**_key_json(key), "api_key": secret},
        [
            f"API key {key.name!r} with a budget of {format_share(budget)} SHARE:",
            secret,
            "It is shown only this once; the gateway keeps only its hash.",
        ],
    )
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    from sharedllm.chain.amounts import format_share

    keys = _keys(args).list()
    lines = [f"{'name':<20} {'budget':>12} {'spent':>12} {'held':>12} {'left':>12}  state"]
    for k in keys:
        amounts = [format_share(v) for v in (k.budget, k.spent, k.reserved, k.remaining)]
        state = "active" if k.active else "revoked"
        lines.append(f"{k.name:<20} " + " ".join(f"{a:>12}" for a in amounts) + f"  {state}")
    if not keys:
        lines = ["no API keys yet: `sharedllm serve keys add NAME --budget SHARE`"]
    emit(args, {"keys": [_key_json(k) for k in keys]}, lines)
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    key = _keys(args).revoke(args.name)
    emit(args, _key_json(key), [f"API key {key.name!r} revoked"])
    return 0


@chain_command
def _serve(args: argparse.Namespace) -> int:
    asyncio.run(_run(args))
    return 0


async def _run(args: argparse.Namespace) -> None:
    from aiohttp import web

    from sharedllm.chain.amounts import format_share
    from sharedllm.gateway.app import build_app, make_state
    from sharedllm.gateway.budget_payer import reconcile
    from sharedllm.model.device import resolve_device
    from sharedllm.model.store import ModelStore

    device = resolve_device(args.device)  # a missing device fails before the chain is read
    chain = open_chain(args)
    paying = args.dev_account is not None or args.keystore is not None
    operator = signer(args, chain) if paying else None
    keys = _keys(args)
    store = ModelStore(args.models_dir) if args.models_dir else None
    state = await asyncio.to_thread(
        make_state, chain, chain.w3.provider.endpoint_uri, operator,
        model_id=args.model, keys=keys, store=store, device=device,
    )  # fmt: skip
    settled = await reconcile(keys, chain)
    runner = web.AppRunner(build_app(state), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, args.host, args.port).start()
        except OSError as exc:  # not the chain's fault: say what to change
            raise ConfigError(
                f"cannot listen on {args.host}:{args.port}: {exc.strerror}; is another "
                "`sharedllm serve` running there? Pick another --port",
                code="PORT_IN_USE" if exc.errno == errno.EADDRINUSE else "LISTEN_FAILED",
                field="port",
            ) from None
        port = runner.addresses[0][1]
        url = f"http://{args.host}:{port}"
        manifest = state.client_model.manifest
        if operator is not None:
            escrow = chain.market.escrow_of(operator.address)
            payer = f"operator {operator.address} (escrow {format_share(escrow)} SHARE)"
        else:
            payer = "no operator account: /v1 requests are refused, the web page works"
        stop = stop_event()
        if settled:
            print(f"settled {settled} reservation(s) left by an earlier run", file=sys.stderr)
        print(
            f"ready {url} api={url}/v1 web={url}/ model={manifest.model_id}\n"
            f"  OpenAI API base: {url}/v1  (model {manifest.name.lower()!r})\n"
            f"  web page:        {url}/\n"
            f"  paying:          {payer}",
            flush=True,
        )
        await stop.wait()
    finally:
        await runner.cleanup()
        with contextlib.suppress(Exception):
            state.book.close()
        keys.close()
        print("stopped", file=sys.stderr, flush=True)
