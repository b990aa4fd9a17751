"""Gas per contract operation, measured on a real anvil with the shipped contracts.

The baseline is a plain ERC-20 ``transfer`` of SHARE in the same run, so the table reads as
"how many token transfers does this operation cost". Run: ``python bench/gas.py``;
``--markdown docs/GAS.md`` also writes the tables there, in place of the ones it holds
(the prose around them is kept).
"""

from __future__ import annotations

import argparse
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.batch_tree import BatchedJob, build_batch
from sharedllm.chain.connection import Chain
from sharedllm.chain.court import FAULT, vote_commitment
from sharedllm.chain.devnet import Devnet
from sharedllm.chain.registry import NodeConfig
from sharedllm.chain.transact import TxResult
from sharedllm.protocol.amendment import Amendment, sign_amendment
from sharedllm.protocol.job import Job, job_digest, sign_job
from sharedllm.protocol.receipts import Receipt, job_commitment

MODEL_ID = "0x" + "5e" * 32
PRICE = 10**12
TOKENS = 32
ROUTES = {1: [(0, 30)], 2: [(0, 15), (15, 30)], 3: [(0, 10), (10, 20), (20, 30)]}
# (answers, clients) per batch; the target is 256 answers from 16 clients.
BATCHES = ((16, 16), (64, 16), (256, 16), (256, 4), (256, 64), (1024, 16), (1024, 64))


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


def _job(chain: Chain, client, route: list, nonce: int) -> Job:
    deadline = chain.w3.eth.get_block("latest")["timestamp"] + 600
    return Job.from_json({
        "modelId": MODEL_ID, "route": [n.address for n, _, _ in route],
        "spanStarts": [s for _, s, _ in route], "spanEnds": [e for _, _, e in route],
        "maxTokens": TOKENS, "maxPricePerToken": PRICE, "nonce": nonce,
        "deadline": deadline, "client": client.address,
    })  # fmt: skip


def submit(
    chain: Chain, client, route: list, nonce: int, commitment: bytes = b"\x07" * 32
) -> tuple[str, TxResult]:
    job = _job(chain, client, route, nonce)
    signature = sign_job(job, client, chain.chain_id, chain.market.address)
    done = chain.market.submit_result(route[-1][0], job, signature, TOKENS, commitment)
    return done.job_id, done.tx


def submit_amended(chain: Chain, client, route: list, spare, nonce: int) -> tuple[str, TxResult]:
    """A 3-hop job whose hop 1 died halfway and was handed to ``spare`` (a failover under
    the same job)."""
    job = _job(chain, client, route, nonce)
    signature = sign_job(job, client, chain.chain_id, chain.market.address)
    job_hash = job_digest(job, chain.chain_id, chain.market.address)
    amendment = sign_amendment(
        Amendment(1, spare.address, TOKENS // 2), job_hash, client, chain.chain_id,
        chain.market.address,
    )  # fmt: skip
    done = chain.market.submit_amended(
        route[-1][0], job, signature, (amendment,), TOKENS, b"\x07" * 32
    )
    return done.job_id, done.tx


def receipts(job_id: str, hops: int, steps: int, prompt: int) -> list[Receipt]:
    """A job's committed receipts: a prompt step of ``prompt`` positions, then one position
    per step, chained over ``hops`` hops (signatures are not what the market checks)."""
    out, position = [], 0
    for step in range(steps):
        n = prompt if step == 0 else 1
        for hop in range(hops):
            out.append(Receipt(bytes.fromhex(job_id[2:]), hop, step, position, n,
                               bytes([hop]) * 32, bytes([hop + 1]) * 32, b"\x00" * 64))  # fmt: skip
        position += n
    return sorted(out, key=lambda r: (r.step, r.hop))


def dispute_rows(net: Devnet, chain: Chain, job_id: str) -> list[Row]:
    """One dispute from opening to an upheld verdict, each phase a transaction."""
    rows: list[Row] = []
    verifiers = [dev_account(i) for i in (8, 10, 11, 12)]
    for v in verifiers:
        tx = chain.court.stake_verifier(v, 100 * WEI_PER_SHARE, chain.token)
    rows.append(Row("stakeVerifier", tx.gas_used, "court"))
    challenger, jurors = verifiers[0], verifiers[1:]
    bond = chain.court.params()["minBond"]
    chain.token.approve(challenger, chain.court.address, 10**30)
    tx = chain.court.open_dispute(challenger, job_id, 1, FAULT, b"\x0e" * 32, bond, chain.token)
    rows.append(Row("openDispute", tx.gas_used, "bond posted, payout frozen"))
    for _ in range(2):  # the draw block, then one to draw in
        chain.w3.provider.make_request("evm_mine", [])
    tx = chain.court.draw_jury(challenger, job_id)
    rows.append(Row("drawJury", tx.gas_used, "3 seats from 3 eligible of 4 verifiers"))
    salts = {j.address: secrets.token_bytes(32) for j in jurors}
    voting: list[int] = []  # every commit and reveal, for the whole dispute's total
    for j in jurors:
        c = vote_commitment(job_id, 0, j.address, True, salts[j.address])
        commit = chain.court.commit_vote(j, job_id, c)
        voting.append(commit.gas_used)
    rows.append(Row("commitVote", commit.gas_used, "per juror"))
    for j in jurors:
        reveal = chain.court.reveal_vote(j, job_id, True, salts[j.address])
        voting.append(reveal.gas_used)
    rows.append(Row("revealVote", reveal.gas_used, "per juror"))
    tx = chain.court.resolve(challenger, job_id)
    rows.append(Row("resolve (upheld)", tx.gas_used, "refund, slash, pay 2 hops, 3 jurors"))
    total = sum(r.gas for r in rows[1:3]) + sum(voting) + tx.gas_used
    rows.append(
        Row("a whole dispute, jury of 3", total, "open + draw + 3 commits + 3 reveals + resolve")
    )
    return rows


@dataclass
class BatchRow:
    answers: int
    clients: int
    post: int
    finalize: int

    @property
    def per_answer(self) -> float:
        return (self.post + self.finalize) / self.answers


def batch_clients(chain: Chain, count: int) -> list:
    """``count`` fresh clients (seeded keys), each with ETH for gas and SHARE in escrow."""
    funder = dev_account(0)
    clients = [Account.from_key((0xBA7C4 + k).to_bytes(32, "big")) for k in range(count)]
    for c in clients:
        chain.w3.provider.make_request("anvil_setBalance", [c.address, hex(10**20)])
        chain.token.transfer(funder, c.address, 100 * WEI_PER_SHARE)
        chain.token.approve(c, chain.market.address, 10**30)
        chain.market.deposit(c, 100 * WEI_PER_SHARE, chain.token)
    return clients


def batched_job(chain: Chain, client, route: list, nonce: int) -> BatchedJob:
    job = _job(chain, client, route, nonce)
    signature = sign_job(job, client, chain.chain_id, chain.market.address)
    digest = job_digest(job, chain.chain_id, chain.market.address)
    return BatchedJob(job, digest, signature, 0, TOKENS, b"\x07" * 32, (PRICE,) * len(route))


def batch_rows(net: Devnet, chain: Chain, route: list) -> list[BatchRow]:
    """Post then finalize one batch per shape in BATCHES, over one 3-hop route, posted by
    its last hop; every answer serves TOKENS tokens."""
    clients = batch_clients(chain, max(c for _, c in BATCHES))
    reward = chain.deployment.params.reward_per_token
    posted = []
    nonce = 1000
    for answers, count in BATCHES:
        jobs: dict = {c.address: [] for c in clients[:count]}
        for k in range(answers):
            client = clients[k % count]
            jobs[client.address].append(batched_job(chain, client, route, nonce))
            nonce += 1
        entries = build_batch(jobs, reward)
        done = chain.batches.post(route[-1][0], entries)
        assert done.unfunded == 0, "every entry is funded"
        posted.append((answers, count, entries, done))
    net.advance_time(chain.deployment.params.challenge_window + 1)
    rows = []
    for answers, count, _entries, done in posted:
        tx = chain.batches.finalize(route[0][0], done.batch_id, done.payout)
        rows.append(BatchRow(answers, count, done.tx.gas_used, tx.gas_used))
    return rows


def measure() -> tuple[list[Row], list[BatchRow]]:
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

        spare = dev_account(10)
        cfg = NodeConfig("http://127.0.0.1:9010", "0x" + "01" * 32, MODEL_ID, 10, 20, PRICE)
        chain.registry.stake(spare, 150 * WEI_PER_SHARE, cfg, chain.token)
        amended, tx = submit_amended(chain, client, nodes[3], spare, nonce=5)
        rows.append(Row("submitAmended, 3 hops + 1 replacement", tx.gas_used,
                        "a failover under the same job"))  # fmt: skip

        rows.extend(dispute_rows(net, chain, jobs[2]))
        # An over-charge: the committed receipts prove 24 + 7 positions, the job charges 32.
        route = nodes[3]
        job = _job(chain, client, route, nonce=4)
        job_id = "0x" + chain.market.hash_job(job).hex()
        committed = receipts(job_id, 3, 8, 24)
        blob = b"".join(r.to_bytes() for r in committed)
        proof_job, _ = submit(chain, client, route, 4, job_commitment(committed))
        assert proof_job == job_id
        tx = chain.market.prove_overcharge(verifier, job_id, blob)
        rows.append(Row("proveOvercharge, 3 hops, 8 steps", tx.gas_used, "24 receipts, no jury"))

        net.advance_time(chain.deployment.params.challenge_window + 1)
        tx = chain.market.finalize(client, jobs[3])
        rows.append(Row("finalize, 3 hops", tx.gas_used, "pays hops + rewards"))
        tx = chain.market.finalize(client, jobs[1])
        rows.append(Row("finalize, 1 hop", tx.gas_used))
        tx = chain.market.finalize(client, amended)
        rows.append(Row("finalize, amended (4 payees)", tx.gas_used))

        batched = batch_rows(net, chain, nodes[3])

        node = nodes[3][0][0]
        rows.append(Row("requestUnstake", chain.registry.request_unstake(node).gas_used))
        net.advance_time(chain.deployment.params.unbonding_delay + 1)
        rows.append(Row("withdraw (node stake)", chain.registry.withdraw(node).gas_used))
        tx = chain.market.request_withdrawal(client, 10 * WEI_PER_SHARE)
        rows.append(Row("requestWithdrawal (escrow)", tx.gas_used))
        net.advance_time(chain.deployment.params.withdrawal_delay + 1)
        rows.append(Row("withdraw (escrow)", chain.market.withdraw(client).gas_used))
    return rows, batched


def table(rows: list[Row]) -> str:
    base = rows[0].gas
    lines = ["| operation | gas | x transfer | note |", "|---|---:|---:|---|"]
    lines += [f"| {r.operation} | {r.gas:,} | {r.gas / base:.1f} | {r.note} |" for r in rows]
    return "\n".join(lines)


def per_job(rows: list[Row]) -> int:
    """Today's path for one 3-hop answer: its own submitResult and finalize."""
    by_name = {r.operation: r.gas for r in rows}
    return by_name["submitResult, 3 hops"] + by_name["finalize, 3 hops"]


def batch_table(rows: list[Row], batched: list[BatchRow]) -> str:
    base = rows[0].gas
    single = per_job(rows)
    lines = [
        "| answers | clients | postBatch | finalizeBatch | gas per answer | x transfer "
        "| ÷ per-job path |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| 1 | 1 | submitResult | finalize | {single:,} | {single / base:.1f} | 1.000 |",
    ]
    lines += [
        f"| {b.answers} | {b.clients} | {b.post:,} | {b.finalize:,} | {b.per_answer:,.0f} "
        f"| {b.per_answer / base:.3f} | {b.per_answer / single:.4f} |"
        for b in batched
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--markdown", type=Path, help="also write the table into this file")
    args = parser.parse_args(argv)
    rows, batched = measure()
    text = table(rows) + "\n\n## Batched settlement, 3-hop answers\n\n" + batch_table(rows, batched)
    print(text)
    if args.markdown:
        old = args.markdown.read_text() if args.markdown.exists() else ""
        args.markdown.write_text(with_tables(old, text))
    return 0


HEADER = (
    "# Gas per operation\n\n"
    "Measured by `python bench/gas.py` on anvil (cancun, optimizer 200 runs) with the\n"
    "contracts shipped in `sharedllm/chain/artifacts`. Jobs serve 32 tokens over 30\n"
    "layers; the baseline is a SHARE `transfer` in the same run. Totals include the\n"
    "21,000 intrinsic gas of a transaction.\n\n"
)


def with_tables(old: str, text: str) -> str:
    """``old`` with its two tables replaced by ``text`` and its prose kept; a file without
    them becomes the header and the tables."""
    start = old.find("| operation |")
    batched = old.find("## Batched settlement", start)
    if start < 0 or batched < 0:
        return HEADER + text + "\n"
    rows = old.find("\n|", batched)
    end = old.find("\n\n", rows + 1)
    end = len(old) if end < 0 else end
    return old[:start] + text + old[end:]


if __name__ == "__main__":
    sys.exit(main())
