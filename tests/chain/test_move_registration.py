"""What a staked node's move changes on-chain (``node/move_registration.py``), against a real
anvil: the peers it weighs, when it may change its registration (once per terms lock), and
the change itself."""

from __future__ import annotations

import asyncio

import pytest

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.registry import NodeConfig
from sharedllm.errors import ChainError, ContractRevert
from sharedllm.node.move_registration import StakedRegistration

pytestmark = pytest.mark.chain

MODEL = "0x" + "5e" * 32
OTHER_MODEL = "0x" + "6f" * 32
MOVER, PEER, STRANGER = dev_account(1), dev_account(2), dev_account(3)


def _stake(chain, account, port: int, model: str, start: int, end: int, hardware: str) -> None:
    key = "0x" + f"{port:064x}"
    cfg = NodeConfig(f"https://127.0.0.1:{port}", key, model, start, end, 10**12, hardware)
    chain.registry.stake(account, 100 * WEI_PER_SHARE, cfg, chain.token)


@pytest.fixture
def staked(chain):
    _stake(chain, MOVER, 9001, MODEL, 0, 10, "cuda-sm86")
    _stake(chain, PEER, 9002, MODEL, 10, 30, "cpu")
    _stake(chain, STRANGER, 9003, OTHER_MODEL, 0, 30, "cpu")
    return chain, StakedRegistration(chain, MOVER)


def test_the_peers_are_the_registrys_nodes_on_the_model_pinned_to_their_keys(staked):
    _, registration = staked

    class Expected:  # what the node's links are told to expect, by URL
        def __init__(self) -> None:
            self.keys: dict[str, tuple[bytes, ...]] = {}

        def expect(self, url: str, *keys: bytes) -> None:
            self.keys[url] = keys

    trust = Expected()
    assert asyncio.run(registration.peer_urls(trust)) == ["https://127.0.0.1:9002"]
    assert trust.keys == {"https://127.0.0.1:9002": ((9002).to_bytes(32, "big"),)}


def test_a_move_waits_out_the_terms_lock_of_the_last_change(staked, anvil):
    """Jobs sent before a change of span are checked against the span the node had, so the
    registry takes one change per lock; the node plans no move until it is over."""
    chain, registration = staked
    assert asyncio.run(registration.move_refusal()) is None  # never changed
    asyncio.run(registration.moved(20, 30))
    refusal = asyncio.run(registration.move_refusal())
    assert refusal is not None and "next change of span in 10 min" in refusal
    with pytest.raises(ContractRevert) as refused:  # what the registry would say
        asyncio.run(registration.moved(0, 10))
    assert refused.value.code == "TermsChangeTooSoon"
    anvil.advance_time(chain.registry.terms_lock())
    assert asyncio.run(registration.move_refusal()) is None
    asyncio.run(registration.moved(0, 10))
    assert chain.registry.get_node(MOVER.address).start == 0


def test_the_move_changes_only_the_span_and_survives_a_lost_receipt(staked, anvil, monkeypatch):
    chain, registration = staked
    asyncio.run(registration.moved(20, 30))
    entry = chain.registry.get_node(MOVER.address)
    assert (entry.start, entry.end, entry.hardware, entry.price_per_token) == (
        20, 30, "cuda-sm86", 10**12,
    )  # fmt: skip
    assert entry.endpoint == "https://127.0.0.1:9001"

    # The transaction is mined but its answer is lost: the entry read back settles it.
    send = chain.registry.update_config

    def lost(account, cfg):
        send(account, cfg)
        raise ChainError("the RPC went away before the receipt", code="RPC_UNAVAILABLE")

    monkeypatch.setattr(chain.registry, "update_config", lost)
    anvil.advance_time(chain.registry.terms_lock())  # one change of span per lock
    asyncio.run(registration.moved(0, 10))
    assert (chain.registry.get_node(MOVER.address).start, 10) == (0, 10)

    # Not mined at all: the failure is the caller's, and the entry still names 0:10.
    def refused(account, cfg):
        raise ChainError("the RPC went away", code="RPC_UNAVAILABLE")

    monkeypatch.setattr(chain.registry, "update_config", refused)
    anvil.advance_time(chain.registry.terms_lock())
    with pytest.raises(ChainError):
        asyncio.run(registration.moved(20, 30))
    entry = chain.registry.get_node(MOVER.address)
    assert (entry.start, entry.end) == (0, 10)
