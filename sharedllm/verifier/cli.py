"""``sharedllm-verifier stake|run|status``: stake as a verifier, check the network's work."""

from __future__ import annotations

import argparse
import asyncio
import logging
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
from sharedllm.model.device import DEVICES
from sharedllm.stop_signals import stop_event

DEFAULT_PROBABILITY = "0.1"
LEDGER_HELP = "ledger file (default: $SHAREDLLM_HOME/verifiers/ADDRESS/ledger.db)"


def register(sub: argparse._SubParsersAction) -> None:
    """Add this part's commands."""
    stake = sub.add_parser("stake", help="stake SHARE as a verifier on the DisputeCourt")
    stake.add_argument("--amount", required=True, help=AMOUNT_HELP)
    add_chain_options(stake)
    add_account_options(stake)
    stake.set_defaults(func=_stake)

    run = sub.add_parser(
        "run", help="follow commitments, check a random sample, dispute faults, sit on juries"
    )
    run.add_argument(
        "--probability",
        default=DEFAULT_PROBABILITY,
        help=f"chance that a job is checked, 0..1 (default {DEFAULT_PROBABILITY})",
    )
    run.add_argument(
        "--stake",
        help="stake this much first if not yet a verifier (default: the court's minimum); "
        + AMOUNT_HELP,
    )
    run.add_argument(
        "--bond",
        help="bond posted with each dispute (default: the court's minimum); " + AMOUNT_HELP,
    )
    run.add_argument("--threads", type=int, default=1, help="torch threads for recomputation")
    run.add_argument(
        "--device",
        choices=DEVICES,
        default="cpu",
        help="where recomputation runs: cpu (default, the class the tolerance rule was "
        "measured on), auto, cuda or mps",
    )
    run.add_argument(
        "--models-dir", type=Path, help="model store (default: $SHAREDLLM_HOME/models)"
    )
    run.add_argument("--poll-interval", type=float, default=1.0, help="seconds between passes")
    run.add_argument("--ledger", type=Path, help=LEDGER_HELP)
    add_chain_options(run)
    add_account_options(run)
    run.set_defaults(func=_run)

    status = sub.add_parser("status", help="the verifier's stake and what its ledger holds")
    status.add_argument("--ledger", type=Path, help=LEDGER_HELP)
    add_chain_options(status)
    add_account_options(status)
    status.set_defaults(func=_status)


def ensure_staked(chain, account, amount: int | None) -> int:
    """Stake ``amount`` (default: the minimum) unless already an active verifier; returns
    the stake staked now (0 if none was needed)."""
    if chain.court.is_verifier(account.address):
        return 0
    if amount is None:
        amount = int(chain.court.params()["minVerifierStake"])
    chain.court.stake_verifier(account, amount, chain.token)
    return amount


@chain_command
def _stake(args: argparse.Namespace) -> int:
    from sharedllm.chain.amounts import format_share, parse_positive_share

    amount = parse_positive_share(args.amount, "--amount")
    chain = open_chain(args)
    account = signer(args, chain)
    tx = chain.court.stake_verifier(account, amount, chain.token)
    total = chain.court.verifier_stake(account.address)
    emit(
        args,
        {"verifier": account.address, "staked": str(amount), "stake": str(total), "tx": tx.tx_hash},
        [f"staked {format_share(amount)} SHARE as verifier {account.address}",
         f"stake now {format_share(total)} SHARE (tx {tx.tx_hash})"],
    )  # fmt: skip
    return 0


@chain_command
def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from sharedllm.chain.amounts import format_share, parse_positive_share
    from sharedllm.verifier.selection import SelectionPolicy, parse_probability

    probability = parse_probability(args.probability)
    amount = parse_positive_share(args.stake, "--stake") if args.stake else None
    bond = parse_positive_share(args.bond, "--bond") if args.bond else None
    if args.threads < 1:
        from sharedllm.errors import ConfigError

        raise ConfigError("--threads: must be at least 1", field="threads")
    # Heavy imports (torch, transformers) happen here, not at CLI start-up.
    import torch

    from sharedllm.model.device import resolve_device
    from sharedllm.model.store import ModelStore
    from sharedllm.verifier.ledger import VerifierLedger, ledger_path
    from sharedllm.verifier.service import VerifierService

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)  # a missing device fails here, in one line
    chain = open_chain(args)
    account = signer(args, chain)
    if bond is not None and bond < int(chain.court.params()["minBond"]):
        from sharedllm.errors import ConfigError

        floor = format_share(int(chain.court.params()["minBond"]))
        raise ConfigError(f"--bond: below the court's minimum of {floor} SHARE", field="bond")
    staked = ensure_staked(chain, account, amount)
    if staked:
        print(f"staked {format_share(staked)} SHARE as verifier {account.address}", flush=True)
    ledger = VerifierLedger(args.ledger or ledger_path(account.address))
    store = ModelStore(args.models_dir)
    service = VerifierService(
        chain,
        account,
        ledger,
        store,
        SelectionPolicy(probability),
        fault=args.fault,
        bond=bond,
        device=device,
    )
    _preload(service, chain)
    ready = f"ready {account.address} probability={probability} ledger={ledger.path}"
    asyncio.run(_serve(service, args.poll_interval, ready))
    ledger.close()
    return 0


def _preload(service, chain) -> None:
    """Load the spans the registry's active nodes serve, so the first check is not late."""
    for node in chain.registry.active_nodes():
        try:
            service.runners.get(node.model_id, node.start, node.end)
        except Exception as exc:  # a model we do not hold is loaded (or refused) on demand
            logging.getLogger(__name__).warning("cannot preload %s: %s", node.address, exc)


async def _serve(service, interval: float, ready: str) -> None:
    stop = stop_event()
    print(ready, flush=True)
    await service.run(interval, stop)


@chain_command
def _status(args: argparse.Namespace) -> int:
    from collections import Counter

    from sharedllm.chain.amounts import format_share
    from sharedllm.verifier.ledger import VerifierLedger, ledger_path

    chain = open_chain(args)
    account = signer(args, chain)
    info = chain.court.get_verifier(account.address)
    path = args.ledger or ledger_path(account.address)
    ledger = VerifierLedger(path) if path.exists() else None
    jobs = ledger.all() if ledger else []
    cases = ledger.cases() if ledger else []
    counts = Counter(j.status for j in jobs)
    disputed = [j for j in jobs if j.status in ("challenged", "upheld", "rejected")]
    emit(
        args,
        {"verifier": account.address, "stake": str(info.stake), "locked": str(info.locked),
         "active": chain.court.is_verifier(account.address), "jobs": dict(counts),
         "challenges": [{"job_id": j.job_id, "hop": j.hop, "tx": j.challenge_tx,
                         "status": j.status} for j in disputed],
         "cases": [{"job_id": c.job_id, "round": c.round, "status": c.status,
                    "vote": None if c.uphold is None else ("uphold" if c.uphold else "reject"),
                    "outcome": c.outcome} for c in cases]},
        [f"verifier {account.address}: stake {format_share(info.stake)} SHARE"
         + (f" ({format_share(info.locked)} locked in jury cases)" if info.locked else ""),
         "jobs: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none seen"),
         *(f"  {j.status} {j.job_id} hop {j.hop} tx {j.challenge_tx}" for j in disputed),
         f"jury cases: {len(cases)}",
         *(f"  {c.job_id} round {c.round}: {c.status}"
           + (f", voted {'uphold' if c.uphold else 'reject'}" if c.uphold is not None else "")
           + (f", {c.outcome}" if c.outcome else "") for c in cases)],
    )  # fmt: skip
    return 0
