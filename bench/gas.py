"""Gas per contract operation, measured on a real anvil with the shipped contracts.

The baseline is a plain ERC-20 ``transfer`` of SHARE in the same run, so the table reads as
"how many token transfers does this operation cost". Run: ``python bench/gas.py``;
``--markdown docs/GAS.md`` also writes the table there.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.connection import Chain
from sharedllm.chain.devnet import Devnet
from sharedllm.chain.registry import NodeConfig
from sharedllm.chain.transact import TxResult
from sharedllm.protocol.job import Job, sign_job

MODEL_ID = "0x" + "5e" * 32
PRICE = 10**12
TOKENS = 32
ROUTES = {1: [(0, 30)], 2: [(0, 15), (15, 30)], 3: [(0, 10), (10, 20), (20, 30)]}


@dataclass
class Row:
    operation: str
    gas: int
    note: str = ""


def stake_nodes(chain: Chain, rows: list[Row]) -> dict[int, list]:
    """Dev accounts 1..6 as nodes: one covering all 30 layers, two halves, three thirds."""
    nodes: dict[int, list] = {}
    index = 1
    for hops, spans in ROUTES.items():
        nodes[hops] = []
        for start, end in spans:
            node = dev_account(index)
            cfg = NodeConfig(f"http://127.0.0.1:{9000 + index}", "0x" + "01" * 32, MODEL_ID,
                             start, end, PRICE)  # fmt: skip
            tx = chain.registry.stake(node, 150 * WEI_PER_SHARE, cfg, chain.token)
            if index == 1:
                rows.append(Row("stake (first, registers the node)", tx.gas_used))
            nodes[hops].append((node, start, end))
            index += 1
    top_up = chain.registry.stake(nodes[1][0][0], 10 * WEI_PER_SHARE,
                                  _cfg_of(chain, nodes[1][0][0].address), chain.token)  # fmt: skip
    rows.append(Row("stake (top-up)", top_up.gas_used))
    return nodes


def _cfg_of(chain: Chain, address: str) -> NodeConfig:
    n = chain.registry.get_node(address)
    return NodeConfig(n.endpoint, n.pubkey, n.model_id, n.start, n.end, n.price_per_token)


def submit(chain: Chain, client, route: list, nonce: int) -> tuple[str, TxResult]:
    deadline = chain.w3.eth.get_block("latest")["timestamp"] + 600
    job = Job.from_json({
        "modelId": MODEL_ID, "route": [n.address for n, _, _ in route],
        "spanStarts": [s for _, s, _ in route], "spanEnds": [e for _, _, e in route],
        "maxTokens": TOKENS, "maxPricePerToken": PRICE, "nonce": nonce,
        "deadline": deadline, "client": client.address,
    })  # fmt: skip
    signature = sign_job(job, client, chain.chain_id, chain.market.address)
    done = chain.market.submit_result(route[-1][0], job, signature, TOKENS, b"\x07" * 32)
    return done.job_id, done.tx


def measure() -> list[Row]:
    rows: list[Row] = []
    with Devnet() as net:
        chain = net.chain()
        client, verifier = dev_account(7), dev_account(8)
        baseline = chain.token.transfer(dev_account(0), dev_account(9).address, WEI_PER_SHARE)
        rows.append(Row("ERC-20 transfer (baseline)", baseline.gas_used))
        nodes = stake_nodes(chain, rows)

        chain.token.approve(client, chain.market.address, 10**30)
        tx = chain.market.deposit(client, 500 * WEI_PER_SHARE, chain.token)
        rows.append(Row("deposit", tx.gas_used, "allowance already set"))
        jobs = {}
        for hops, route in nodes.items():
            jobs[hops], tx = submit(chain, client, route, nonce=hops)
            rows.append(Row(f"submitResult, {hops} hop{'s' if hops > 1 else ''}", tx.gas_used))

        tx = chain.market.stake_verifier(verifier, 100 * WEI_PER_SHARE, chain.token)
        rows.append(Row("stakeVerifier", tx.gas_used))
        tx = chain.market.challenge(verifier, jobs[2], 1, b"\x0e" * 32)
        rows.append(Row("challenge (quorum 1: refund + slash)", tx.gas_used, "2-hop job"))

        net.advance_time(chain.deployment.params.challenge_window + 1)
        tx = chain.market.finalize(client, jobs[3])
        rows.append(Row("finalize, 3 hops", tx.gas_used, "pays hops + rewards"))
        tx = chain.market.finalize(client, jobs[1])
        rows.append(Row("finalize, 1 hop", tx.gas_used))

        node = nodes[3][0][0]
        rows.append(Row("requestUnstake", chain.registry.request_unstake(node).gas_used))
        net.advance_time(chain.deployment.params.unbonding_delay + 1)
        rows.append(Row("withdraw (node stake)", chain.registry.withdraw(node).gas_used))
        tx = chain.market.request_withdrawal(client, 10 * WEI_PER_SHARE)
        rows.append(Row("requestWithdrawal (escrow)", tx.gas_used))
        net.advance_time(chain.deployment.params.withdrawal_delay + 1)
        rows.append(Row("withdraw (escrow)", chain.market.withdraw(client).gas_used))
    return rows


def table(rows: list[Row]) -> str:
    base = rows[0].gas
    lines = ["| operation | gas | x transfer | note |", "|---|---:|---:|---|"]
    lines += [f"| {r.operation} | {r.gas:,} | {r.gas / base:.1f} | {r.note} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--markdown", type=Path, help="also write the table into this file")
    args = parser.parse_args(argv)
    text = table(measure())
    print(text)
    if args.markdown:
        args.markdown.write_text(
            "# Gas per operation\n\n"
            "Measured by `python bench/gas.py` on anvil (cancun, optimizer 200 runs) with the\n"
            "contracts shipped in `sharedllm/chain/artifacts`. Jobs serve 32 tokens over 30\n"
            "layers; the baseline is a SHARE `transfer` in the same run. Totals include the\n"
            "21,000 intrinsic gas of a transaction.\n\n" + text + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
