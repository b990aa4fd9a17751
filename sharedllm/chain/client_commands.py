"""``sharedllm`` commands that move money: devnet, deposit, withdraw, balance, faucet, account."""

from __future__ import annotations

import signal
import threading
from typing import Any

from sharedllm import paths
from sharedllm.chain.accounts import (
    DEV_ACCOUNT_COUNT,
    dev_account,
    list_keystores,
    new_keystore,
    read_password,
    require_dev_chain,
)
from sharedllm.chain.amounts import format_share, parse_positive_share
from sharedllm.chain.cli_common import (
    address_of,
    chain_command,
    emit,
    open_chain,
    signer,
    wait_for_chain_time,
)
from sharedllm.chain.devnet import Devnet
from sharedllm.chain.times import format_duration, ready_phrase
from sharedllm.cli_base import Args, confirm
from sharedllm.errors import ConfigError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
CONFIRM_DEPOSIT_ABOVE = 100 * 10**18  # wei: a deposit above this asks first


def devnet(args: Args) -> int:
    """Run anvil with the contracts deployed until Ctrl-C or SIGTERM."""
    stop = threading.Event()
    # Both signals just set the event: SIGINT may arrive ignored from a background shell,
    # and handling it here stops anvil in order either way.
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in STOP_SIGNALS}
    deployment_file = args.deployment or paths.deployment_file()
    try:
        with Devnet(port=args.port, deployment_path=deployment_file) as net:
            assert net.deployment is not None
            data = {
                "rpcUrl": net.rpc_url,
                "deploymentFile": str(deployment_file),
                **net.deployment.to_json(),
                "devAccounts": [dev_account(i).address for i in range(DEV_ACCOUNT_COUNT)],
            }
            emit(args, data, _devnet_lines(net.rpc_url, data))
            if not args.json:
                print("devnet running; Ctrl-C to stop", flush=True)
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not args.json:
        print("devnet stopped")
    return 0


def _devnet_lines(rpc_url: str, data: dict[str, Any]) -> list[str]:
    lines = [f"rpc url:       {rpc_url}", f"chain id:      {data['chainId']}"]
    lines += [f"{name + ':':<14} {addr}" for name, addr in data["addresses"].items()]
    lines.append(f"deployment:    {data['deploymentFile']}")
    lines += [f"dev account {i}: {addr}" for i, addr in enumerate(data["devAccounts"])]
    return lines


@chain_command
def deposit(args: Args) -> int:
    amount = parse_positive_share(args.amount)
    chain = open_chain(args)
    account = signer(args, chain)
    if amount > CONFIRM_DEPOSIT_ABOVE:
        confirm(
            args,
            f"deposit {format_share(amount)} SHARE from {account.address} into escrow?",
            action="a deposit above 100 SHARE",
        )
    tx = chain.market.deposit(account, amount, chain.token)
    escrow = chain.market.escrow_of(account.address)
    emit(
        args,
        {
            "client": account.address,
            "deposited": str(amount),
            "escrow": str(escrow),
            "tx": tx.tx_hash,
        },
        [f"deposited {format_share(amount)} SHARE; escrow now {format_share(escrow)} SHARE"],
    )
    return 0


@chain_command
def withdraw(args: Args) -> int:
    chain = open_chain(args)
    account = signer(args, chain)
    if args.action == "request":
        if args.amount is None:
            raise ConfigError("withdraw request: AMOUNT is required", field="amount")
        amount = parse_positive_share(args.amount)
        escrow = chain.market.escrow_of(account.address)
        if amount > escrow:
            raise ConfigError(
                f"amount: escrow holds {format_share(escrow)} SHARE, cannot withdraw "
                f"{format_share(amount)}",
                code="InsufficientEscrow",
            )
        delay = chain.market.params()["withdrawalDelay"]
        confirm(
            args,
            f"withdraw {format_share(amount)} SHARE from escrow? It can be taken out "
            f"{format_duration(delay)} after this request, and jobs cannot spend it meanwhile",
            action="withdraw request",
        )
        tx = chain.market.request_withdrawal(account, amount)
        pending = chain.market.pending_withdrawal(account.address)
        emit(
            args,
            {
                "client": account.address,
                "requested": str(amount),
                "readyAt": pending.ready_at,
                "tx": tx.tx_hash,
            },
            [
                f"withdrawal of {format_share(amount)} SHARE requested; "
                f"{ready_phrase(pending.ready_at, chain.now())}: then run "
                "`sharedllm withdraw execute`"
            ],
        )
        return 0
    pending = chain.market.pending_withdrawal(account.address)
    if not pending.amount:
        raise ConfigError(
            "no withdrawal was requested: run `sharedllm withdraw request AMOUNT` first",
            code="NoWithdrawalRequested",
        )
    now = chain.now()
    if now < pending.ready_at and args.wait:
        now = wait_for_chain_time(chain, pending.ready_at, "withdrawal")
    if now < pending.ready_at:
        raise ConfigError(
            f"the withdrawal of {format_share(pending.amount)} SHARE is not ready: "
            f"{ready_phrase(pending.ready_at, now)}",
            code="WithdrawalNotReady",
        )
    confirm(
        args,
        f"take {format_share(pending.amount)} SHARE out of escrow into {account.address}?",
        action="withdraw execute",
    )
    before = chain.token.balance_of(account.address)
    tx = chain.market.withdraw(account)
    paid = chain.token.balance_of(account.address) - before
    emit(
        args,
        {"client": account.address, "withdrawn": str(paid), "tx": tx.tx_hash},
        [f"withdrew {format_share(paid)} SHARE from escrow"],
    )
    return 0


@chain_command
def balance(args: Args) -> int:
    chain = open_chain(args)
    who = address_of(args, chain)
    wallet = chain.token.balance_of(who)
    escrow = chain.market.escrow_of(who)
    pending = chain.market.pending_withdrawal(who)
    data = {
        "address": who,
        "wallet": str(wallet),
        "escrow": str(escrow),
        "pendingWithdrawal": {"amount": str(pending.amount), "readyAt": pending.ready_at},
        "eth": str(chain.eth_balance(who)),
    }
    lines = [
        f"address: {who}",
        f"wallet:  {format_share(wallet)} SHARE",
        f"escrow:  {format_share(escrow)} SHARE",
    ]
    if pending.amount:
        lines.append(
            f"pending withdrawal: {format_share(pending.amount)} SHARE, "
            f"{ready_phrase(pending.ready_at, chain.now())}"
        )
    emit(args, data, lines)
    return 0


@chain_command
def faucet(args: Args) -> int:
    """Mint SHARE on a devnet; the token owner is dev account 0."""
    amount = parse_positive_share(args.amount)
    chain = open_chain(args)
    require_dev_chain(chain.chain_id)
    to = address_of(args, chain) if (args.address or args.keystore or args.dev_account) else None
    if to is None:
        raise ConfigError("faucet: pass --address, --dev-account or --keystore", field="address")
    tx = chain.token.mint(dev_account(0), to, amount)
    emit(
        args,
        {"to": to, "minted": str(amount), "tx": tx.tx_hash},
        [f"minted {format_share(amount)} SHARE to {to}"],
    )
    return 0


def account(args: Args) -> int:
    if args.action == "new":
        password = read_password(args.password_file, new=True)
        if not password:
            raise ConfigError("password: refusing to create a keystore with an empty password")
        created, path = new_keystore(password, args.keystore)
        emit(
            args,
            {"address": created.address, "keystore": str(path)},
            [f"created {created.address}", f"keystore: {path}"],
        )
        return 0
    found = list_keystores()
    emit(
        args,
        {"keystores": [{"address": a, "path": str(p)} for a, p in found]},
        [f"{a}  {p}" for a, p in found] or ["no keystores"],
    )
    return 0
