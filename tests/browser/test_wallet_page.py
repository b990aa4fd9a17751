"""The web page in a real browser: a wallet connects, deposits, and pays for answers it signs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from injected_wallet import InjectedWallet
from juries import draw, stake_verifiers, vote
from playwright.sync_api import expect

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.court import FAULT
from sharedllm.localnet import LocalNetwork
from sharedllm.protocol.job import Job, job_id

pytestmark = [pytest.mark.browser, pytest.mark.chain, pytest.mark.model, pytest.mark.nodes]

PROMPT = "What is the capital of France?"
SETTLE_MS = 90_000


def _wallet(net: LocalNetwork, index: int, **options: object) -> InjectedWallet:
    return InjectedWallet(dev_account(index), net.devnet.rpc_url, net.chain.chain_id, **options)


def _connect(page, wallet: InjectedWallet) -> None:
    page.click("#connect")
    expect(page.locator("#account")).to_have_attribute("title", wallet.account.address)


def _ask(page, prompt: str, max_tokens: int) -> None:
    page.fill("#max-tokens", str(max_tokens))
    page.fill("#prompt", prompt)
    page.click("#send")


def test_deposit_ask_and_pay_exactly_the_shown_cost(open_page, net: LocalNetwork) -> None:
    chain = net.chain
    wallet = _wallet(net, 5)
    address = wallet.account.address
    page = open_page(wallet)

    # The network view draws the three spans over the model's 30 layers.
    expect(page.locator("#strip svg g.span")).to_have_count(3)
    expect(page.locator("#strip svg rect.cov.one")).to_have_count(30)

    _connect(page, wallet)
    expect(page.locator("#balance")).to_have_attribute(
        "data-wei", str(chain.token.balance_of(address))
    )
    expect(page.locator("#escrow")).to_have_attribute("data-wei", "0")

    page.fill("#deposit-amount", "2")
    page.click("#deposit")
    expect(page.locator("#escrow")).to_have_attribute(
        "data-wei", str(2 * WEI_PER_SHARE), timeout=30_000
    )
    assert chain.market.escrow_of(address) == 2 * WEI_PER_SHARE
    # A permit, not an approval: the market holds no standing allowance afterwards.
    assert chain.token.allowance(address, chain.market.address) == 0
    assert wallet.calls.count("eth_signTypedData_v4") == 1

    _ask(page, PROMPT, 12)
    cost = page.locator(".msg.assistant .receipt .cost")
    expect(cost).to_be_visible(timeout=120_000)
    assert "Paris" in page.locator(".msg.assistant .text").inner_text()
    shown_cost = int(cost.get_attribute("data-wei"))
    assert shown_cost > 0
    # The job the wallet signed names the route the page showed.
    job = wallet.signed[-1]["message"]
    assert job["client"] == address
    assert len(page.locator(".msg.assistant .route .hop").all()) == len(job["route"]) == 3

    status = page.locator(".msg.assistant .receipt .pill")
    expect(status).to_have_attribute("data-status", "finalized", timeout=SETTLE_MS)
    assert chain.market.escrow_of(address) == 2 * WEI_PER_SHARE - shown_cost
    expect(page.locator("#escrow")).to_have_attribute(
        "data-wei", str(2 * WEI_PER_SHARE - shown_cost), timeout=10_000
    )


def test_a_refused_signature_charges_nothing_and_says_so(open_page, net: LocalNetwork) -> None:
    chain = net.chain
    wallet = _wallet(net, 6, refuse_signatures=True)
    address = wallet.account.address
    chain.market.deposit(wallet.account, 1 * WEI_PER_SHARE, chain.token)
    page = open_page(wallet)
    _connect(page, wallet)
    expect(page.locator("#escrow")).to_have_attribute("data-wei", str(1 * WEI_PER_SHARE))

    _ask(page, PROMPT, 8)
    refused = page.locator(".msg.assistant .note.refused")
    expect(refused).to_contain_text("nothing was charged", timeout=60_000)
    assert wallet.calls.count("eth_signTypedData_v4") == 1
    expect(page.locator(".msg.assistant .receipt")).to_be_hidden()
    time.sleep(2)  # had anything been sent to a node, its submission would land by now
    assert chain.market.escrow_of(address) == 1 * WEI_PER_SHARE
    expect(page.locator("#send")).to_be_enabled()


def test_too_little_escrow_offers_a_deposit_inline(open_page, net: LocalNetwork) -> None:
    chain = net.chain
    wallet = _wallet(net, 8)
    address = wallet.account.address
    page = open_page(wallet)
    _connect(page, wallet)
    expect(page.locator("#escrow")).to_have_attribute("data-wei", "0")

    _ask(page, PROMPT, 8)
    short = page.locator(".msg.assistant .note.warn")
    expect(short).to_contain_text("Not enough in escrow", timeout=60_000)
    assert "eth_signTypedData_v4" not in wallet.calls  # nothing to sign, nothing signed
    short.locator("button.deposit-inline").click()
    expect(page.locator("#escrow")).to_have_attribute(
        "data-wei", str(1 * WEI_PER_SHARE), timeout=30_000
    )
    assert chain.market.escrow_of(address) == 1 * WEI_PER_SHARE


def test_the_wrong_chain_asks_to_switch_and_switching_works(open_page, net: LocalNetwork) -> None:
    wallet = _wallet(net, 7, knows_chain=False)
    wallet.chain_id = 1
    page = open_page(wallet)
    _connect(page, wallet)
    banner = page.locator("#wrong-chain")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(f"chain {net.chain.chain_id}")
    expect(page.locator("#send")).to_be_disabled()
    page.screenshot(path=str(_screenshots() / "wrong_chain_before_switch.png"), full_page=True)

    page.click("#switch-chain")
    expect(banner).to_be_hidden()
    assert wallet.chain_id == net.chain.chain_id
    # The wallet did not know the chain: the page added it after the switch was refused.
    assert wallet.calls.index("wallet_switchEthereumChain") < wallet.calls.index(
        "wallet_addEthereumChain"
    )
    expect(page.locator("#balance")).to_have_attribute(
        "data-wei", str(net.chain.token.balance_of(wallet.account.address))
    )
    expect(page.locator("#prompt")).to_be_enabled()


def _screenshots() -> Path:
    folder = Path(__file__).with_name("screenshots")  # as the conftest's screenshot fixture
    folder.mkdir(exist_ok=True)
    return folder


def test_a_disputed_answer_shows_its_review_then_is_refunded_and_its_slash_shown(
    open_page, net: LocalNetwork
) -> None:
    chain = net.chain
    verifier, *jurors = stake_verifiers(chain, (9, 10, 11, 12))
    wallet = _wallet(net, 4)
    address = wallet.account.address
    chain.market.deposit(wallet.account, 1 * WEI_PER_SHARE, chain.token)
    page = open_page(wallet)
    _connect(page, wallet)
    expect(page.locator("#escrow")).to_have_attribute("data-wei", str(1 * WEI_PER_SHARE))

    _ask(page, PROMPT, 6)
    deadline = time.monotonic() + 120
    while not wallet.signed:
        assert time.monotonic() < deadline, "the page never asked the wallet to sign"
        page.wait_for_timeout(200)
    job_id = _job_id(wallet.signed[-1], net)
    while chain.market.get_job(job_id).status != "Submitted":
        assert time.monotonic() < deadline, "the job was never submitted"
        page.wait_for_timeout(200)
    hop = 1
    cheat = chain.registry.get_node(net.accounts[hop].address)
    bond = chain.court.params()["minBond"]
    chain.court.open_dispute(verifier, job_id, hop, FAULT, b"\x01" * 32, bond, chain.token)

    status = page.locator(f".receipt [data-job='{job_id}'] .pill")
    expect(status).to_have_attribute("data-status", "challenged", timeout=SETTLE_MS)
    expect(page.locator(".msg.assistant .note.warn")).to_contain_text("a jury decides")
    draw(chain, job_id, verifier)
    expect(status).to_have_attribute("data-status", "under review", timeout=SETTLE_MS)
    expect(status).to_contain_text("0/3 votes revealed")
    vote(chain, job_id, jurors, uphold=True)
    chain.court.resolve(verifier, job_id)
    expect(status).to_have_attribute("data-status", "upheld", timeout=SETTLE_MS)
    expect(page.locator(".msg.assistant .note.bad")).to_contain_text("returned to your escrow")
    assert chain.market.escrow_of(address) == 1 * WEI_PER_SHARE
    expect(page.locator("#escrow")).to_have_attribute("data-wei", str(1 * WEI_PER_SHARE))
    slash = page.locator("#slashes .slash").first
    expect(slash).to_contain_text(f"{cheat.address[:6]}…{cheat.address[-4:]}")
    expect(slash).to_contain_text("50 SHARE")
    assert chain.registry.get_node(cheat.address).stake == cheat.stake - 50 * WEI_PER_SHARE


def test_request_a_withdrawal_and_take_it_after_the_delay(open_page, net: LocalNetwork) -> None:
    chain = net.chain
    wallet = _wallet(net, 7)
    address = wallet.account.address
    chain.market.deposit(wallet.account, 1 * WEI_PER_SHARE, chain.token)
    page = open_page(wallet)
    _connect(page, wallet)
    expect(page.locator("#escrow")).to_have_attribute("data-wei", str(1 * WEI_PER_SHARE))

    page.fill("#withdraw-amount", "0.4")
    page.click("#request-withdrawal")
    pending = page.locator("#pending")
    expect(pending).to_contain_text("0.4 SHARE", timeout=30_000)
    expect(pending).to_contain_text("ready in")
    expect(page.locator("#withdraw")).to_be_disabled()
    assert chain.market.pending_withdrawal(address).amount == 4 * WEI_PER_SHARE // 10

    # Last test of the module: moving the devnet's clock past the delay.
    delay = chain.market.params()["withdrawalDelay"]
    chain.w3.provider.make_request("evm_increaseTime", [delay + 1])
    chain.w3.provider.make_request("evm_mine", [])
    balance = chain.token.balance_of(address)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    expect(pending).to_contain_text("is ready")
    page.click("#withdraw")
    expect(page.locator("#escrow")).to_have_attribute(
        "data-wei", str(6 * WEI_PER_SHARE // 10), timeout=30_000
    )
    expect(pending).to_be_hidden()
    assert chain.token.balance_of(address) == balance + 4 * WEI_PER_SHARE // 10


def _job_id(typed_data: dict, net: LocalNetwork) -> str:
    message = dict(typed_data["message"])
    for name in ("maxPricePerToken", "nonce"):
        message[name] = int(message[name])
    return job_id(Job.from_json(message), net.chain.chain_id, net.chain.market.address)
