"""``sharedllm-node`` commands that manage a node's registration and stake on the registry.

Prices are typed in SHARE per position per layer served (each prompt and answer token
is a position), decimals allowed (``--price 0.000001`` is 1e12 wei).
"""

from __future__ import annotations

from sharedllm import paths
from sharedllm.chain.amounts import format_share, parse_positive_share, parse_share
from sharedllm.chain.cli_common import (
    address_of,
    chain_command,
    emit,
    open_chain,
    signer,
    wait_for_chain_time,
)
from sharedllm.chain.connection import Chain
from sharedllm.chain.node_keys import (
    default_node_key_path,
    load_or_create_node_key,
    public_key_bytes32,
)
from sharedllm.chain.registry import NodeConfig, NodeInfo
from sharedllm.chain.terms_lock import check_terms_change
from sharedllm.chain.times import format_duration, ready_phrase
from sharedllm.cli_base import Args, confirm
from sharedllm.errors import ChainError, ConfigError, SharedLLMError
from sharedllm.node.earnings import Earnings, earnings


def parse_layers(text: str) -> tuple[int, int]:
    """``A:B`` -> (A, B), a half-open span with 0 <= A < B."""
    try:
        start_text, end_text = text.split(":")
        start, end = int(start_text), int(end_text)
    except ValueError:
        raise ConfigError(f"--layers: expected START:END, got {text!r}", field="layers") from None
    if not 0 <= start < end < 1 << 16:
        raise ConfigError(
            f"--layers: invalid span {start}:{end} (need 0 <= start < end)", field="layers"
        )
    return start, end


def _pubkey(args: Args, known: NodeInfo | None) -> str:
    """``--pubkey``, else ``--node-key``'s, else the registered one, else the default key's."""
    if args.pubkey:
        return args.pubkey
    if args.node_key is not None:
        return public_key_bytes32(load_or_create_node_key(args.node_key))
    if known is not None:
        return known.pubkey
    return public_key_bytes32(load_or_create_node_key(default_node_key_path()))


def _default_model_id() -> str | None:
    """The local model store's default model, if the model part is installed and has one."""
    try:
        from sharedllm.model.store import ModelStore

        return ModelStore().default_model_id()
    except (ImportError, SharedLLMError):
        return None


def _check_span_fits(model_id: str, span: tuple[int, int]) -> None:
    """The registry cannot know a model's depth; the local model store can. A span past the
    model's last layer would be registered, then never served (clients skip it)."""
    try:
        from sharedllm.model.store import ModelStore

        layers = ModelStore().manifest(model_id.lower()).num_layers
    except (ImportError, SharedLLMError):
        return  # not in the local store: `sharedllm-node run` checks it against the shards
    if span[1] > layers:
        raise ConfigError(
            f"--layers {span[0]}:{span[1]}: the model {model_id[:10]}… has {layers} layers "
            f"(0:{layers})",
            code="BAD_SPAN",
            field="layers",
        )


def _default_hardware() -> str:
    """The class of the device ``sharedllm-node run --device auto`` would serve on here."""
    from sharedllm.model.device import hardware_class, resolve_device

    return hardware_class(resolve_device("auto"))


def _config(args: Args, current: NodeInfo) -> NodeConfig:
    """Options given on the command line over the node's registered config (if any)."""
    known = current if current.status != "None" else None
    endpoint = args.endpoint or (known.endpoint if known else None)
    model_id = args.model_id or (known.model_id if known else _default_model_id())
    if args.layers:
        span: tuple[int, int] | None = parse_layers(args.layers)
    else:
        span = (known.start, known.end) if known else None
    if args.price is not None:
        price: int | None = parse_share(args.price, "--price")
    else:
        price = known.price_per_token if known else None
    for option, value in (
        ("--endpoint", endpoint),
        ("--model-id", model_id),
        ("--layers", span),
        ("--price", price),
    ):
        if value is None:
            raise ConfigError(f"{option} is required", field=option.lstrip("-"))
    assert endpoint is not None and model_id is not None and span is not None
    assert price is not None
    _check_span_fits(model_id, span)
    if not endpoint.startswith("https://"):
        raise ConfigError(
            f"--endpoint {endpoint}: a paid node is reached only at an https URL (paid "
            "sessions travel only over encrypted links)",
            code="PLAINTEXT_REFUSED",
            field="endpoint",
        )
    hardware = args.hardware or (known.hardware if known and known.hardware else None)
    return NodeConfig(
        endpoint, _pubkey(args, known), model_id.lower(), *span, price,
        hardware or _default_hardware(),
    )  # fmt: skip


@chain_command
def stake(args: Args) -> int:
    amount = parse_positive_share(args.amount, "--amount")
    chain = open_chain(args)
    account = signer(args, chain)
    current = chain.registry.get_node(account.address)
    if current.status == "Unbonding":
        raise ConfigError(
            "node is unbonding: withdraw first, then stake again", code="NodeUnbonding"
        )
    cfg = _config(args, current)
    check_terms_change(chain, current, cfg)
    if current.status == "None":
        need = chain.registry.min_stake()
        if amount < need:
            raise ConfigError(
                f"--amount: below the minimum stake ({format_share(amount)} < "
                f"{format_share(need)} SHARE)",
                code="StakeBelowMinimum",
            )
    tx = chain.registry.stake(account, amount, cfg, chain.token)
    _report(args, chain, account.address, f"staked {format_share(amount)} SHARE", tx.tx_hash)
    return 0


@chain_command
def update(args: Args) -> int:
    chain = open_chain(args)
    account = signer(args, chain)
    current = chain.registry.get_node(account.address)
    if current.status != "Active":
        raise ConfigError("node is not active: stake first", code="NodeNotActive")
    cfg = _config(args, current)
    check_terms_change(chain, current, cfg)
    tx = chain.registry.update_config(account, cfg)
    _report(args, chain, account.address, "config updated", tx.tx_hash)
    return 0


@chain_command
def unstake(args: Args) -> int:
    chain = open_chain(args)
    account = signer(args, chain)
    if chain.registry.get_node(account.address).status != "Active":
        raise ConfigError("node is not active: nothing to unstake", code="NodeNotActive")
    delay = chain.registry.unbonding_delay()
    confirm(
        args,
        f"unstake node {account.address}? It leaves the active list at once, and its "
        f"stake can be withdrawn {format_duration(delay)} from now",
        action="unstake",
    )
    tx = chain.registry.request_unstake(account)
    _report(args, chain, account.address, "unstake requested", tx.tx_hash)
    return 0


@chain_command
def withdraw(args: Args) -> int:
    chain = open_chain(args)
    account = signer(args, chain)
    node = chain.registry.get_node(account.address)
    if node.status != "Unbonding":
        raise ConfigError(
            "node is not unbonding: run `sharedllm-node unstake` first", code="NotUnbonding"
        )
    now = chain.now()
    if now < node.unbonding_at and args.wait:
        now = wait_for_chain_time(chain, node.unbonding_at, "unbonding")
    if now < node.unbonding_at:
        raise ChainError(
            f"unbonding is not over: the stake is {ready_phrase(node.unbonding_at, now)}",
            code="UnbondingNotOver",
        )
    confirm(
        args,
        f"withdraw the stake of {format_share(node.stake)} SHARE into {account.address}? "
        "The node's registration ends",
        action="withdraw",
    )
    tx = chain.registry.withdraw(account)
    _report(args, chain, account.address, f"withdrew {format_share(node.stake)} SHARE", tx.tx_hash)
    return 0


@chain_command
def status(args: Args) -> int:
    chain = open_chain(args)
    address = address_of(args, chain)
    _report(args, chain, address, None, None, earnings(paths.nodes_dir() / address / "ledger.db"))
    return 0


def _report(
    args: Args,
    chain: Chain,
    address: str,
    did: str | None,
    tx: str | None,
    earned: Earnings | None = None,
) -> None:
    node = chain.registry.get_node(address)
    wallet = chain.token.balance_of(address)
    data = {**node.to_json(), "wallet": str(wallet)}
    if tx:
        data["tx"] = tx
    lines = [did] if did else []
    lines += [f"node:     {address}", f"status:   {node.status}"]
    if node.status != "None":
        lines += [
            f"stake:    {format_share(node.stake)} SHARE",
            f"model:    {node.model_id}",
            f"layers:   {node.start}:{node.end}",
            f"hardware: {node.hardware or 'not registered'}",
            f"price:    {format_share(node.price_per_token)} SHARE per position per layer",
            f"endpoint: {node.endpoint}",
            f"pubkey:   {node.pubkey}",
        ]
    if node.status == "Unbonding":
        lines.append(f"unbonding: the stake is {ready_phrase(node.unbonding_at, chain.now())}")
    lines.append(f"wallet:   {format_share(wallet)} SHARE")
    if earned is not None:
        data["earnings"] = earned.to_json()
        lines.append(
            f"earned:   {format_share(earned.paid)} SHARE + reward {format_share(earned.rewards)} "
            f"SHARE over {earned.finalized_jobs} job(s); {earned.pending_jobs} job(s) worth "
            f"{format_share(earned.pending)} SHARE waiting for their challenge window"
        )
        for batch in earned.batches:
            window = int(chain.market.params()["challengeWindow"])
            if batch["batchId"] is None:
                lines.append(f"batch:    {batch['jobs']} job(s) being posted")
                continue
            record = chain.batches.get_batch(int(batch["batchId"]))
            when = ready_phrase(record.posted_at + window, chain.now()).replace("ready", "payable")
            lines.append(f"batch:    #{batch['batchId']}, {batch['jobs']} job(s), {when}")
    emit(args, data, lines)
