"""The web page when the route's last hop dies mid-answer: the wallet signs a job for the new
route, the answer goes on, and the escrow pays exactly the cost the page shows, both jobs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from injected_wallet import InjectedWallet
from links import call_json, pinned_ssl
from playwright.sync_api import expect

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.localnet import LocalNetwork

pytestmark = [pytest.mark.browser, pytest.mark.chain, pytest.mark.model, pytest.mark.nodes]

PROMPT = "Tell me a short story about a robot who learns to paint."
CLIENT = 5


@pytest.fixture(scope="module")
def net(model_home: Path) -> Iterator[LocalNetwork]:
    """Two nodes for the last span, so that one can die and the answer still finish."""
    spans = ((0, 10), (10, 20), (20, 30), (20, 30))
    with LocalNetwork(spans, node_accounts=(1, 2, 3, 8)) as network:
        yield network


def _sessions_open(node) -> int:
    status, info = call_json(f"{node.url}/info", pinned_ssl(node))
    assert status == 200, info
    return int(info["sessions_open"])


def test_a_last_hop_dying_mid_answer_asks_the_wallet_again_and_pays_both_jobs(
    open_page, net: LocalNetwork
) -> None:
    chain = net.chain
    wallet = InjectedWallet(dev_account(CLIENT), net.devnet.rpc_url, chain.chain_id)
    address = wallet.account.address
    chain.market.deposit(wallet.account, 2 * WEI_PER_SHARE, chain.token)
    page = open_page(wallet)
    page.click("#connect")
    expect(page.locator("#escrow")).to_have_attribute("data-wei", str(2 * WEI_PER_SHARE))

    page.fill("#max-tokens", "48")
    page.fill("#prompt", PROMPT)
    page.click("#send")
    text = page.locator(".msg.assistant .text")
    deadline = time.monotonic() + 120
    while len(text.inner_text()) < 12:  # a few tokens in: the answer is under way
        assert time.monotonic() < deadline, "no answer started"
        page.wait_for_timeout(100)
    last_hops = [n for n in net.nodes[2:] if n is not None]
    victim = next(n for n in last_hops if _sessions_open(n) > 0)
    victim.kill()

    cost = page.locator(".msg.assistant .receipt .cost")
    expect(cost).to_be_visible(timeout=120_000)
    assert wallet.calls.count("eth_signTypedData_v4") == 2  # one job per route
    expect(page.locator(".msg.assistant .note.warn")).to_contain_text("stopped answering")
    hops = page.locator(".msg.assistant .route .hop")
    expect(hops).to_have_count(3)
    assert victim.url not in [h.get_attribute("title") for h in hops.all()]  # the new route
    jobs = page.locator(".msg.assistant .receipt .job")
    expect(jobs).to_have_count(2)
    for job in jobs.all():
        expect(job.locator(".pill")).to_have_attribute("data-status", "finalized", timeout=90_000)
    shown = int(cost.get_attribute("data-wei"))
    assert shown > 0
    assert chain.market.escrow_of(address) == 2 * WEI_PER_SHARE - shown
    expect(page.locator("#escrow")).to_have_attribute(
        "data-wei", str(2 * WEI_PER_SHARE - shown), timeout=10_000
    )
