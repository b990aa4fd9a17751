"""The end-to-end demo (``python -m sharedllm.demo``, what ``make demo`` runs).

A readable sequence of steps: start a devnet, stake three nodes that split the model's 30
layers and start them as real processes, start a verifier that checks every job, let a client
deposit and ask a paid question, show the answer, its route, cost and on-chain commitment,
show the verifier's verdict, wait out the challenge window, and show who was paid.
Everything it started is stopped before it exits.
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


def wait_for(chain: Chain, job_id: str, status: str) -> dict:
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        record = chain.market.get_job(job_id)
        if record.status == status:
            return record.fields
        time.sleep(1)
    raise SharedLLMError(f"job {job_id} did not become {status} in {SETTLE_TIMEOUT_S} s")


def commitment_tx(chain: Chain, job_id: str) -> str:
    events = chain.market.contract.events.ResultSubmitted().get_logs(
        from_block=chain.deployment.deploy_block,
        argument_filters={"jobHash": bytes.fromhex(job_id[2:])},
    )
    return "0x" + bytes(events[0]["transactionHash"]).hex() if events else "?"


def main() -> int:
    step("start a devnet, stake three nodes and start them (layers 0:10, 10:20, 20:30)")
    with LocalNetwork(verifier_probability=VERIFIER_PROBABILITY) as net:
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

        step("the last hop commits the result on-chain")
        record = wait_for(chain, paid.signed.job_id, "Submitted")
        tx = commitment_tx(chain, paid.signed.job_id)
        print(f"  commitment {record['commitment']} in tx {tx}")
        print(f"  locked {format_share(record['cost'])} SHARE until the challenge window ends")

        step("the verifier re-runs every hop's span over its transcript and compares")
        window = int(chain.market.params()["challengeWindow"])
        print(f"  verdict: {verifier.verdict(paid.signed.job_id, timeout=window + 10)}")

        step(f"after the {window} s challenge window: finalized")
        wait_for(chain, paid.signed.job_id, "Finalized")
        for event in chain.market.contract.events.HopPaid().get_logs(
            from_block=chain.deployment.deploy_block,
            argument_filters={"jobHash": bytes.fromhex(paid.signed.job_id[2:])},
        ):
            args = event["args"]
            print(
                f"  paid {args['node']}: {format_share(args['amount'])} SHARE "
                f"+ reward {format_share(args['reward'])} SHARE"
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
