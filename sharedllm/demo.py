"""The end-to-end demo (``python -m sharedllm.demo``, what ``make demo`` runs).

A readable sequence of steps: start a devnet, stake three nodes that split the model's 30
layers and start them as real processes (settling in batches), start a verifier that checks
every job, let a client deposit and ask a paid question, show the answer, its route and
cost, the batch its last hop posted it in and what that cost in gas, the verifier's verdict,
wait out the challenge window, and show who was paid. Everything it started is stopped
before it exits.
"""

from __future__ import annotations

import sys
import time

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE, format_share
from sharedllm.chain.connection import Chain
from sharedllm.errors import SharedLLMError
from sharedllm.localnet import LocalNetwork

PROMPT = "What is the capital of France?"
CLIENT_DEPOSIT = 10 * WEI_PER_SHARE
SETTLE_TIMEOUT_S = 120
VERIFIER_PROBABILITY = 1.0  # the demo checks its one job, so the verdict is there to see
# Batches of up to 64 answers, posted once the oldest has waited 3 s: the demo has one answer.
NODE_ARGS = ("--threads", "1", "--batch-size", "64", "--batch-age", "3")


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def snapshot(chain: Chain, accounts: dict[str, str]) -> dict[str, tuple[int, int]]:
    return {
        name: (chain.token.balance_of(a), chain.market.escrow_of(a)) for name, a in accounts.items()
    }


def show_balances(
    chain: Chain, now: dict[str, tuple[int, int]], before: dict | None = None
) -> None:
    for name, (wallet, escrow) in now.items():
        line = f"  {name:<8} wallet {format_share(wallet):>22}  escrow {format_share(escrow):>10}"
        if before is not None:
            delta = (wallet + escrow) - sum(before[name])
            line += f"  change {'+' if delta >= 0 else ''}{format_share(delta)} SHARE"
        print(line)
    print(f"  reward pool {format_share(chain.market.reward_pool())} SHARE", flush=True)


def wait_for_batch(chain: Chain, client: str, status: str) -> int:
    """The batch holding the client's entry, once it is ``status``."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        for entry in chain.batches.entries_posted(client, chain.deployment.deploy_block):
            if chain.batches.get_batch(entry.batch_id).status == status:
                return entry.batch_id
        time.sleep(1)
    raise SharedLLMError(f"no batch for {client} became {status} in {SETTLE_TIMEOUT_S} s")


def main() -> int:
    step("start a devnet, stake three nodes and start them (layers 0:10, 10:20, 20:30)")
    with LocalNetwork(node_args=NODE_ARGS, verifier_probability=VERIFIER_PROBABILITY) as net:
        chain = net.chain
        assert chain is not None
        print(f"  chain {chain.chain_id} at {net.devnet.rpc_url}; JobMarket {chain.market.address}")
        print(f"  model {net.manifest.name} ({net.manifest.model_id})")
        for node, account in zip(net.nodes, net.accounts, strict=True):
            assert node is not None
            print(
                f"  node {account.address} layers {node.span[0]:>2}:{node.span[1]:<2} {node.url} "
                f"stake {format_share(chain.registry.get_node(account.address).stake)} SHARE "
                f"(ready in {node.ready_s:.1f} s)"
            )

        verifier = net.verifier
        assert verifier is not None
        print(
            f"  verifier {verifier.address} stake "
            f"{format_share(chain.court.verifier_stake(verifier.address))} SHARE, "
            f"checks {VERIFIER_PROBABILITY:.0%} of jobs"
        )

        step("a client deposits into its escrow")
        client = dev_account(4)
        chain.market.deposit(client, CLIENT_DEPOSIT, chain.token)
        accounts = {"client": client.address}
        accounts.update({f"node {i + 1}": a.address for i, a in enumerate(net.accounts)})
        before = snapshot(chain, accounts)
        show_balances(chain, before)

        step(f"ask, paying per token: {PROMPT!r}")
        text, jobs = net.generate(PROMPT, client, max_tokens=32)
        print(f"  answer: {text.strip()}")
        paid = jobs[-1]
        hops = " -> ".join(f"{h.address[:10]}… [{h.start}:{h.end}]" for h in paid.hops)
        print(f"  route:  {hops}")
        print(f"  job:    {paid.signed.job_id}")
        print(
            f"  cost:   {paid.tokens} tokens x {format_share(paid.price_per_token)} SHARE "
            f"= {format_share(paid.cost)} SHARE"
        )

        step("the last hop posts the answer in a batch: one transaction for many answers")
        batch_id = wait_for_batch(chain, client.address, "Posted")
        record = chain.batches.get_batch(batch_id)
        (posted,) = [p for p in chain.batches.posted_by(record.poster) if p.batch_id == batch_id]
        (entry,) = [
            e for e in chain.batches.entries_posted(client.address) if e.batch_id == batch_id
        ]
        gas = chain.w3.eth.get_transaction_receipt(posted.tx)["gasUsed"]
        print(f"  batch #{batch_id}: {record.entries} client entry(ies), tx {posted.tx}")
        print(f"  entry {entry.index}: your escrow debited {format_share(entry.debit)} SHARE")
        print(f"  posting cost {gas:,} gas, shared by every answer the batch holds")
        print("  locked until the challenge window ends")

        step("the verifier reads the batch, re-runs every hop's span and compares")
        window = int(chain.market.params()["challengeWindow"])
        print(f"  verdict: {verifier.verdict(paid.signed.job_id, timeout=window + 30)}")

        step(f"after the {window} s challenge window: the batch pays its nodes")
        wait_for_batch(chain, client.address, "Finalized")
        for address in (a.address for a in net.accounts):
            amount, reward = chain.batches.paid(batch_id, address)
            print(
                f"  paid {address}: {format_share(amount)} SHARE "
                f"+ reward {format_share(reward)} SHARE (batch #{batch_id})"
            )
        show_balances(chain, snapshot(chain, accounts), before)

        step("shut down")
    print("network stopped")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SharedLLMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
