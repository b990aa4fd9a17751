"""``sharedllm-verifier stake|run|status``: stake as a verifier, check the network's work."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click

from sharedllm.chain.cli_common import (
    AMOUNT_HELP,
    account_params,
    chain_command,
    chain_params,
    emit,
    open_chain,
    signer,
)
from sharedllm.cli_base import Args, command, option, ready_line
from sharedllm.model.device import DEVICES
from sharedllm.stop_signals import stop_event

DEFAULT_PROBABILITY = "0.1"


def register(group: click.Group) -> None:
    """Add ``stake``, ``run`` and ``status``."""
    chain = [*chain_params(), *account_params()]
    ledger = option(
        "--ledger",
        type=click.Path(path_type=Path, dir_okay=False),
        help="ledger file (default: $SHAREDLLM_HOME/verifiers/ADDRESS/ledger.db)",
    )
    group.add_command(
        command(
            "stake",
            f"{COMMANDS}:stake",
            "Stake SHARE as a verifier on the DisputeCourt.",
            [option("--amount", required=True, help="SHARE to stake, " + AMOUNT_HELP), *chain],
        )
    )
    group.add_command(
        command(
            "run",
            f"{COMMANDS}:run_verifier",
            "Follow commitments, check a random sample, dispute faults, sit on juries.",
            [
                option(
                    "--probability",
                    default=DEFAULT_PROBABILITY,
                    help="chance that a job is checked, 0..1",
                ),
                option(
                    "--stake",
                    help="stake this much first if not yet a verifier (default: the court's "
                    "minimum); " + AMOUNT_HELP,
                ),
                option(
                    "--bond",
                    help="bond posted with each dispute (default: the court's minimum); "
                    + AMOUNT_HELP,
                ),
                option("--threads", type=int, default=1, help="torch threads for recomputation"),
                option(
                    "--device",
                    type=click.Choice(DEVICES),
                    default="cpu",
                    help="where recomputation runs: cpu (the class the tolerance rule was "
                    "measured on), auto, cuda or mps",
                ),
                option(
                    "--models-dir",
                    type=click.Path(path_type=Path, file_okay=False),
                    help="model store (default: $SHAREDLLM_HOME/models)",
                ),
                option("--poll-interval", type=float, default=1.0, help="seconds between passes"),
                ledger,
                *chain,
            ],
        )
    )
    group.add_command(
        command(
            "status",
            f"{COMMANDS}:status",
            "The verifier's stake and what its ledger holds.",
            [ledger, *chain],
        )
    )


COMMANDS = "sharedllm.verifier.cli"


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
def stake(args: Args) -> int:
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
def run_verifier(args: Args) -> int:
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
    fields = {"probability": probability, "ledger": ledger.path}
    ready = ready_line(account.address, fields, as_json=args.json)
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
def status(args: Args) -> int:
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
