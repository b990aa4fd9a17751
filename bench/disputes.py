"""Disputes end to end: what honest nodes, cheaters, a griefer, the jurors and the challenger
end up with, detection of every cheating mode through the jury, and gas per dispute phase.

A real devnet, real node processes (layers 10:20 served by an honest node and by one node
per cheating mode), a verifier checking every job and three jurors. Each cheater serves one
job; a griefing verifier disputes honest jobs. The baseline for gas is a SHARE ``transfer``
in the same run. Run: ``python bench/disputes.py`` (about 5 minutes here).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE, format_share
from sharedllm.chain.court import FAULT
from sharedllm.chain.devnet import DEVNET_PARAMS
from sharedllm.client.planner import RoutePolicy
from sharedllm.localnet import LocalNetwork

MODES = ("skip_layer", "random", "bf16", "int8", "replay", "passthrough", "skip_layer:0.05")
CHEATER_ACCOUNTS = (5, 6, 7, 8, 13, 14, 15)
CLIENT, GRIEFER, JURORS = 4, 16, (10, 11, 12)
PROMPT = "Write one sentence about the sea."
PARAMS = dataclasses.replace(DEVNET_PARAMS, challenge_window=15)
SETTLE_S = 180.0


def _wait_end(net: LocalNetwork, job_id: str) -> str:
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        phase = net.chain.court.get_dispute(job_id).phase
        if phase in ("Upheld", "Rejected"):
            return phase.lower()
        time.sleep(0.5)
    return "unresolved"


def _wait_disputed_or_passed(net: LocalNetwork, job_id: str) -> str:
    verdict = net.verifier.verdict(job_id, SETTLE_S)
    if verdict.startswith("challenged"):
        return _wait_end(net, job_id)
    return verdict.split(" ")[0]


def _gas(net: LocalNetwork, name: str, from_block: int) -> list[int]:
    event = getattr(net.chain.court.contract.events, name)()
    hashes = {log["transactionHash"] for log in event.get_logs(from_block=from_block)}
    return [net.chain.w3.eth.get_transaction_receipt(h)["gasUsed"] for h in hashes]


def run(modes: list[str], honest_jobs: int, grief: int, tokens: int) -> None:
    spans = [(0, 10), (10, 20), (20, 30)] + [(10, 20)] * len(modes)
    faults = {3 + i: ("--cheat", mode) for i, mode in enumerate(modes)}
    accounts = (1, 2, 3, *CHEATER_ACCOUNTS[: len(modes)])
    with LocalNetwork(
        spans,
        node_accounts=accounts,
        node_faults=faults,
        params=PARAMS,
        verifier_probability=1.0,
        jurors=JURORS,
        node_stake=300 * WEI_PER_SHARE,
    ) as net:
        chain = net.chain
        start = chain.w3.eth.block_number
        baseline = chain.token.transfer(dev_account(0), dev_account(19).address, WEI_PER_SHARE)
        client, griefer = dev_account(CLIENT), dev_account(GRIEFER)
        chain.market.deposit(client, 20 * WEI_PER_SHARE, chain.token)
        parties = {
            "honest node 0:10": net.accounts[0].address,
            "honest node 10:20": net.accounts[1].address,
            "honest node 20:30": net.accounts[2].address,
            **{f"cheater ({m})": net.accounts[3 + i].address for i, m in enumerate(modes)},
        }
        verifiers = {
            "challenger (p = 1)": net.verifier.address,
            **{f"juror {i + 1}": dev_account(a).address for i, a in enumerate(JURORS)},
            "griefer": griefer.address,
        }

        def holdings() -> dict[str, int]:
            out = {k: chain.registry.get_node(a).stake + chain.token.balance_of(a)
                   for k, a in parties.items()}  # fmt: skip
            out.update({k: chain.court.verifier_stake(a) + chain.token.balance_of(a)
                        for k, a in verifiers.items()})  # fmt: skip
            out["client"] = chain.market.escrow_of(client.address)
            return out

        before = holdings()
        detection = []
        for i, mode in enumerate(modes):
            policy = RoutePolicy(trusted={net.nodes[j].url for j in (0, 3 + i, 2)})
            _, jobs = net.generate(PROMPT, client, tokens, policy=policy)
            outcome = _wait_disputed_or_passed(net, jobs[-1].signed.job_id)
            detection.append((mode, outcome))
            print(f"  {mode}: {outcome}", flush=True)
        # Staked only now: a verifier with no process behind it would sit on the cheaters'
        # juries and lose its penalty for never voting.
        chain.court.stake_verifier(griefer, chain.court.params()["minVerifierStake"], chain.token)
        honest = RoutePolicy(trusted={net.nodes[j].url for j in (0, 1, 2)})
        outcomes = []
        for n in range(honest_jobs):
            _, jobs = net.generate(PROMPT, client, tokens, policy=honest)
            job_id = jobs[-1].signed.job_id
            if n < grief:
                net.wait_for_job(job_id, "Submitted", timeout=SETTLE_S)
                bond = chain.court.params()["minBond"]
                chain.court.open_dispute(griefer, job_id, 1, FAULT, b"\0" * 32, bond, chain.token)
                outcomes.append(("griefed", _wait_end(net, job_id)))
            else:
                outcomes.append(("honest", _wait_disputed_or_passed(net, job_id)))
            print(f"  honest job {n + 1} {outcomes[-1][0]}: {outcomes[-1][1]}", flush=True)
        time.sleep(2)
        after = holdings()

        print("\n| party | before (SHARE) | after (SHARE) | change |\n|---|---:|---:|---:|")
        for k in before:
            change = after[k] - before[k]
            sign = "+" if change >= 0 else "-"
            print(f"| {k} | {format_share(before[k])} | {format_share(after[k])} | "
                  f"{sign}{format_share(abs(change))} |")  # fmt: skip

        print("\n| cheating mode | outcome through the jury |\n|---|---|")
        for mode, outcome in detection:
            note = " (a job with no cheated step passes)" if ":" in mode else ""
            print(f"| {mode} | {outcome}{note} |")
        print("\n| honest job | outcome |\n|---|---|")
        for kind, outcome in outcomes:
            print(f"| {kind} | {outcome} |")

        base = baseline.gas_used
        print("\n| dispute phase | median gas | x transfer | transactions |\n|---|---:|---:|---:|")
        print(f"| ERC-20 transfer (baseline) | {base:,} | 1.0 | 1 |")
        for label, event in (
            ("open (bond, freeze)", "DisputeOpened"),
            ("draw (3 jurors)", "JurorDrawn"),
            ("commit, per juror", "VoteCommitted"),
            ("reveal, per juror", "VoteRevealed"),
            ("resolve", "DisputeResolved"),
        ):
            gas = _gas(net, event, start)
            if gas:
                median = int(statistics.median(gas))
                print(f"| {label} | {median:,} | {median / base:.1f} | {len(gas)} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--modes", default=",".join(MODES), help="cheating modes, comma-separated")
    parser.add_argument("--honest-jobs", type=int, default=3)
    parser.add_argument("--grief", type=int, default=2, help="honest jobs the griefer disputes")
    parser.add_argument("--tokens", type=int, default=8, help="new tokens per job")
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    if len(modes) > len(CHEATER_ACCOUNTS):
        parser.error(f"at most {len(CHEATER_ACCOUNTS)} modes")
    run(modes, args.honest_jobs, min(args.grief, args.honest_jobs), args.tokens)
    return 0


if __name__ == "__main__":
    sys.exit(main())
