"""``sharedllm-verifier stake|status`` against a real anvil (no model, no nodes)."""

from __future__ import annotations

import json

import pytest

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.cli import verifier_main

pytestmark = pytest.mark.chain


def test_stake_then_status_shows_the_stake(chain, capsys) -> None:
    who = dev_account(7).address
    wallet = chain.token.balance_of(who)
    assert verifier_main(["stake", "--amount", "120", "--dev-account", "7"]) == 0
    assert chain.court.is_verifier(who)
    assert chain.court.verifier_stake(who) == 120 * WEI_PER_SHARE
    assert chain.token.balance_of(who) == wallet - 120 * WEI_PER_SHARE
    capsys.readouterr()

    assert verifier_main(["status", "--dev-account", "7", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["stake"] == str(120 * WEI_PER_SHARE) and status["active"] is True
    assert status["jobs"] == {}


def test_a_stake_below_the_minimum_is_refused_with_the_contract_code(chain, capsys) -> None:
    assert verifier_main(["stake", "--amount", "1", "--dev-account", "7"]) == 1
    assert "StakeBelowMinimum" in capsys.readouterr().err
    assert not chain.court.is_verifier(dev_account(7).address)


@pytest.mark.parametrize("probability", ["2", "-1", "often"])
def test_run_refuses_a_bad_probability_before_touching_the_chain(probability, capsys) -> None:
    assert verifier_main(["run", "--probability", probability, "--dev-account", "7"]) == 1
    assert "--probability" in capsys.readouterr().err
