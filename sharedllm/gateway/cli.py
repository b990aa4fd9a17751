"""``sharedllm serve``: the OpenAI-compatible API and the web page; ``serve keys ...``: budgets."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import sys
from pathlib import Path

import click

from sharedllm.chain.cli_common import (
    account_params,
    chain_command,
    chain_params,
    emit,
    open_chain,
    signer,
)
from sharedllm.cli_base import (
    CONTEXT,
    Args,
    argument,
    command,
    json_flag,
    option,
    ready_line,
    runs,
)
from sharedllm.errors import ConfigError
from sharedllm.model.device import DEVICES
from sharedllm.stop_signals import stop_event


def register(group: click.Group) -> None:
    """Add ``serve`` and ``serve keys add|list|revoke``."""
    serve = click.Group(
        "serve",
        help="Serve the OpenAI-compatible API and the web page.\n\n"
        "Serves /v1 (OpenAI-compatible, paid from the operator's account within each API "
        "key's budget) and the web page (paid by the visitor's own wallet). The operator is "
        "the account of --keystore or --dev-account; without one, only the web page works. "
        "`serve keys ...` manages the API keys and their budgets.",
        short_help="Serve the OpenAI-compatible API and the web page",
        invoke_without_command=True,
        callback=runs(f"{COMMANDS}:serve"),
        context_settings=CONTEXT,
        params=[
            option("--host", default="127.0.0.1", help="address to listen on"),
            option("--port", type=int, default=8080, help="0 picks a free port"),
            option("--model", help="model id (default: the store's default model)"),
            option(
                "--models-dir",
                type=click.Path(path_type=Path, file_okay=False),
                help="model store (default: $SHAREDLLM_HOME/models)",
            ),
            _keys_option(),
            option(
                "--device",
                type=click.Choice(DEVICES),
                default="cpu",
                help="where the embedding and the head run: cpu, auto, cuda or mps",
            ),
            *chain_params(),
            *account_params(),
        ],
    )
    keys = click.Group(
        "keys", help="Manage API keys and their budgets.", context_settings=CONTEXT,
        no_args_is_help=True,
    )  # fmt: skip
    keys.add_command(
        command(
            "add",
            f"{COMMANDS}:keys_add",
            "Create a key with a budget; prints the key once.",
            [
                argument("name"),
                option(
                    "--budget",
                    required=True,
                    help='what the key may spend, in SHARE, decimals allowed ("150", "0.5")',
                ),
                _keys_option(),
                json_flag(),
            ],
        )  # fmt: skip
    )
    keys.add_command(
        command(
            "list",
            f"{COMMANDS}:keys_list",
            "Every key: budget, spent, held, left.",
            [_keys_option(), json_flag()],
        )
    )
    keys.add_command(
        command(
            "revoke",
            f"{COMMANDS}:keys_revoke",
            "Refuse a key from now on.",
            [argument("name"), _keys_option(), json_flag()],
        )
    )
    serve.add_command(keys)
    group.add_command(serve)


COMMANDS = "sharedllm.gateway.cli"


def _keys_option() -> click.Option:
    return option(
        "--keys",
        type=click.Path(path_type=Path, dir_okay=False),
        help="API key database (default: $SHAREDLLM_HOME/gateway/keys.db)",
    )


def _keys(args: Args):  # noqa: ANN202 - ApiKeys, imported lazily
    from sharedllm.gateway.api_keys import ApiKeys

    return ApiKeys(args.keys)


def _key_json(key) -> dict:  # noqa: ANN001
    return {
        "name": key.name, "key_id": key.key_id, "budget": str(key.budget),
        "spent": str(key.spent), "reserved": str(key.reserved), "remaining": str(key.remaining),
        "revoked": not key.active,
    }  # fmt: skip


def keys_add(args: Args) -> int:
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


def keys_list(args: Args) -> int:
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


def keys_revoke(args: Args) -> int:
    key = _keys(args).revoke(args.name)
    emit(args, _key_json(key), [f"API key {key.name!r} revoked"])
    return 0


@chain_command
def serve(args: Args) -> int:
    asyncio.run(_run(args))
    return 0


async def _run(args: Args) -> None:
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
        fields = {"api": f"{url}/v1", "web": f"{url}/", "model": manifest.model_id}
        print(ready_line(url, fields, as_json=args.json), flush=True)
        if not args.json:
            print(
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
