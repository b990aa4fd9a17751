"""Browser tests: headless Debian Chromium driven by Playwright, against a real ``sharedllm
serve`` process, a real devnet and three real paid nodes (one of each per test module).

Each test gets a fresh browser context (its own profile) with an injected wallet, and saves
a screenshot under ``tests/browser/screenshots/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from injected_wallet import InjectedWallet

from sharedllm.gateway.local import LocalGateway, start_gateway
from sharedllm.localnet import LocalNetwork

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).with_name("screenshots")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def net(model_home: Path) -> Iterator[LocalNetwork]:
    with LocalNetwork() as network:
        yield network


@pytest.fixture(scope="module")
def gateway(net: LocalNetwork, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalGateway]:
    home = tmp_path_factory.mktemp("gateway-home")
    gw = start_gateway(
        net.devnet.rpc_url,
        net.devnet.deployment_path,
        operator_dev_account=None,
        keys_file=None,
        home=home,
        models_dir=net.store.root,
    )
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (make setup installs it)")
    from playwright.sync_api import sync_playwright

    # Playwright gives every launch a fresh temporary profile (it refuses --user-data-dir
    # here), and every test its own context on top of it.
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def open_page(
    browser, gateway: LocalGateway, net: LocalNetwork, request: pytest.FixtureRequest
) -> Iterator[Callable[[InjectedWallet], object]]:
    """``page = open_page(wallet)``: a fresh context with ``wallet`` injected, on the gateway's
    page; a screenshot named after the test is saved at the end, pass or fail."""
    contexts = []
    pages = []

    def open_(wallet: InjectedWallet) -> object:
        context = browser.new_context(viewport={"width": 1360, "height": 1100})
        contexts.append(context)
        page = context.new_page()
        wallet.install(page)
        page.goto(gateway.url)
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        pages.append(page)
        return page

    try:
        yield open_
    finally:
        SCREENSHOTS.mkdir(exist_ok=True)
        for i, page in enumerate(pages):
            suffix = f"-{i}" if i else ""
            page.screenshot(
                path=str(SCREENSHOTS / f"{request.node.name}{suffix}.png"), full_page=True
            )
        for context in contexts:
            context.close()
