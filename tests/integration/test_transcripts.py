"""Job transcripts end to end: real anvil, three real paid node processes, the real model.

A paid job leaves a transcript on every hop; a staked verifier fetches each one, and what it
gets is what the receipts and the on-chain commitment promise and what the span recomputes;
anyone else is refused; once the job is final the transcripts are gone.

The devnet's challenge window is 10 s from submission, after which the last hop finalizes
and every hop prunes, so the fetches happen first and the (slower) recomputes after.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from links import call_json, node_http, pinned_ssl

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.errors import TranscriptUnavailable
from sharedllm.localnet import LocalNetwork
from sharedllm.model.span import SpanRunner
from sharedllm.protocol import session_keys
from sharedllm.protocol.receipts import check_chain, job_commitment
from sharedllm.protocol.session_keys import key_digest
from sharedllm.protocol.session_msgs import Hop
from sharedllm.protocol.transcript_auth import SIGNATURE_HEADER, sign_request
from sharedllm.verifier.recompute import check_hop
from sharedllm.verifier.transcript_fetch import fetch_transcript

pytestmark = [pytest.mark.chain, pytest.mark.model, pytest.mark.nodes]

PROMPT = "What is the capital of France?"
SETTLE_S = 90
VERIFIER = dev_account(6)
OUTSIDER = dev_account(7)  # holds tokens but never staked as a verifier


@pytest.fixture(scope="module")
def net(paid_network: LocalNetwork) -> LocalNetwork:
    chain = paid_network.chain
    chain.court.stake_verifier(VERIFIER, chain.court.params()["minVerifierStake"], chain.token)
    return paid_network


@pytest.fixture(scope="module")
def served(net: LocalNetwork):
    """One small paid job, and its transcripts as the verifier fetched them right away."""
    chain = net.chain
    client = dev_account(4)
    chain.market.deposit(client, 1 * WEI_PER_SHARE, chain.token)
    _, jobs = net.generate(PROMPT, client, max_tokens=6)
    job = jobs[-1]
    _wait_until(lambda: all(_transcript_file(net, i, job.signed.job_id).exists() for i in range(3)))
    fetched = asyncio.run(_fetch_all(net, job, VERIFIER))
    return job, fetched


def _transcript_file(net: LocalNetwork, i: int, job_id: str) -> Path:
    return net.ledger_path(i).parent / "transcripts" / f"{job_id}.sltx"


def _wait_until(ready, timeout: float = SETTLE_S) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


async def _fetch_all(net: LocalNetwork, job, account, **overrides) -> list:
    chain = net.chain
    async with node_http(*net.nodes) as http:
        return [
            await fetch_transcript(
                http,
                overrides.get("url", hop.url),
                overrides.get("node", hop.address),
                job.signed.job_id,
                i,
                account,
                chain.chain_id,
                chain.market.address,
            )
            for i, hop in enumerate(job.hops)
        ]


def test_every_hop_serves_a_transcript_that_matches_its_receipts_and_the_chain(
    net: LocalNetwork, served, store
) -> None:
    job, transcripts = served
    record = net.wait_for_job(job.signed.job_id, "Submitted", "Finalized", timeout=SETTLE_S)
    last = transcripts[-1]
    # The last hop holds every hop's receipts: they chain and hash to the on-chain commitment.
    check_chain(last.chains, hops=3)
    assert job_commitment(last.chains) == record.commitment
    for i, transcript in enumerate(transcripts):
        assert [r.hop for r in transcript.receipts] == [i] * len(transcript.inputs)
        assert set(transcript.receipts) <= set(last.chains)  # the same receipts everywhere
        assert sum(transcript.lengths) == record.tokens_served
        start, end = net.spans[i]
        result = check_hop(SpanRunner(store, net.manifest, start, end), transcript)
        assert result.verdict.ok, result.verdict
    # Each hop's input is the previous hop's output, byte for byte.
    for before, after in zip(transcripts, transcripts[1:], strict=False):
        assert all((a == b).all() for a, b in zip(before.outputs, after.inputs, strict=True))


def test_only_a_staked_verifier_signing_for_this_node_is_served(net: LocalNetwork, served) -> None:
    job, _ = served
    with pytest.raises(TranscriptUnavailable) as unstaked:
        asyncio.run(_fetch_all(net, job, OUTSIDER))
    assert unstaked.value.details["node_code"] == "NOT_VERIFIER"
    # Signed for hop 1's node but sent to hop 0's: the signature does not recover.
    with pytest.raises(TranscriptUnavailable) as elsewhere:
        asyncio.run(_fetch_all(net, job, VERIFIER, node=job.hops[1].address))
    assert elsewhere.value.details["node_code"] == "SIGNATURE_MISMATCH"

    hop = job.hops[0]

    def ask(expires: int, tamper: bool = False) -> tuple[int, str]:
        headers = sign_request(
            VERIFIER, net.chain.chain_id, net.chain.market.address, hop.address,
            job.signed.job_id, expires,
        )  # fmt: skip
        if tamper:
            sig = headers[SIGNATURE_HEADER]
            headers[SIGNATURE_HEADER] = sig[:10] + ("0" if sig[10] != "0" else "1") + sig[11:]
        url = f"{hop.url}/jobs/{job.signed.job_id}/transcript?hop=0"
        status, answer = call_json(url, pinned_ssl(*net.nodes), headers=headers)
        return status, answer["code"] if status != 200 else ""

    now = int(time.time())
    assert ask(now - 5) == (401, "REQUEST_EXPIRED")
    assert ask(now + 3600) == (401, "EXPIRY_TOO_FAR")
    assert ask(now + 60, tamper=True) == (401, "SIGNATURE_MISMATCH")


def test_transcripts_are_pruned_once_the_job_is_final(net: LocalNetwork, served) -> None:
    job, _ = served
    net.wait_for_job(job.signed.job_id, "Finalized", timeout=SETTLE_S)
    _wait_until(
        lambda: not any(_transcript_file(net, i, job.signed.job_id).exists() for i in range(3))
    )
    with pytest.raises(TranscriptUnavailable) as gone:
        asyncio.run(_fetch_all(net, job, VERIFIER))
    assert gone.value.code == "TRANSCRIPT_MISSING"


def test_a_session_whose_transcript_might_not_fit_is_refused(net: LocalNetwork) -> None:
    chain = net.chain
    client = dev_account(5)
    chain.market.deposit(client, 1 * WEI_PER_SHARE, chain.token)
    last = len(net.spans) - 1
    net.nodes[last].stop()
    # 1 MiB holds the worst case of about 180 positions at hidden 576.
    net.restart(last, extra=("--transcript-budget-mb", "1"))
    try:
        route = tuple(
            Hop(f"https://127.0.0.1:{port}", start, end)
            for port, (start, end) in zip(net.ports, net.spans, strict=True)
        )
        paid = asyncio.run(net.payer(client).job_for(net.manifest.model_id, route, 400))
        link = pinned_ssl(net.nodes[last])
        job, signature = paid.signed.wire()

        def open_last(session_id: str, max_length: int) -> tuple[int, str]:
            body = {
                "session_id": session_id,
                "model_id": net.manifest.model_id,
                "route": [h.to_json() for h in route],
                "hop_index": last,
                "max_length": max_length,
                "job": job,
                "signature": signature,
                "control": key_digest("transcript-test-key"),
            }
            status, answer = call_json(f"{route[last].url}/sessions", link, "POST", body)
            return status, answer["code"] if status != 200 else ""

        assert open_last("too-long-1", 400) == (429, "TRANSCRIPT_BUDGET")
        assert open_last("short-session-1", 16) == (200, "")
        status, _ = call_json(
            f"{route[last].url}/sessions/short-session-1",
            link,
            "DELETE",
            headers={session_keys.HEADER: "transcript-test-key"},
        )
        assert status == 200
        # A short paid answer still fits, through the real client.
        text, jobs = net.generate(PROMPT, client, max_tokens=4)
        assert text and jobs[-1].tokens > 0
    finally:
        net.nodes[last].stop()
        net.restart(last)
