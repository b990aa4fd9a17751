"""The interactive parts of the command line on a real terminal (a pty), against a real
anvil: the hidden password prompt, and confirmations that a "no" turns into nothing sent."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from terminal import Terminal

from sharedllm.chain.accounts import dev_account, load_keystore
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.connection import Chain
from sharedllm.chain.devnet import Devnet
from sharedllm.chain.registry import NodeConfig
from sharedllm.cli_base import EXIT_FAILED

pytestmark = pytest.mark.chain

BIN = Path(sys.executable).parent
CLIENT, NODE = 6, 2


def env(home: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SHAREDLLM_")}
    return clean | {"SHAREDLLM_HOME": str(home), "TERM": "xterm", "COLUMNS": "100"}


def test_a_new_keystore_asks_its_password_twice_without_echo(sharedllm_home: Path) -> None:
    with Terminal([str(BIN / "sharedllm"), "account", "new", "--json"], env(sharedllm_home)) as t:
        t.expect("keystore password: ")
        t.type("s3cret horse\n")
        t.expect("Repeat for confirmation: ")
        t.type("s3cret horse\n")
        assert t.wait() == 0
        shown = t.output
    assert "s3cret" not in shown  # typed, never echoed
    created = json.loads(shown.strip().splitlines()[-1])
    assert load_keystore(Path(created["keystore"]), "s3cret horse").address == created["address"]


def test_a_mistyped_repeat_is_asked_again(sharedllm_home: Path) -> None:
    with Terminal([str(BIN / "sharedllm"), "account", "new"], env(sharedllm_home)) as t:
        t.expect("keystore password: ")
        t.type("one\n")
        t.expect("Repeat for confirmation: ")
        t.type("two\n")
        t.expect("Error: The two entered values do not match.")
        t.expect("keystore password: ")
        t.type("one\n")
        t.expect("Repeat for confirmation: ")
        t.type("one\n")
        assert t.wait() == 0
    assert len(list((sharedllm_home / "keystores").iterdir())) == 1


def test_a_large_deposit_asks_first_and_no_sends_nothing(
    chain: Chain, sharedllm_home: Path
) -> None:
    who = dev_account(CLIENT).address
    argv = [str(BIN / "sharedllm"), "deposit", "150", "--dev-account", str(CLIENT)]
    with Terminal(argv, env(sharedllm_home)) as t:
        t.expect(f"deposit 150 SHARE from {who} into escrow? [y/N]: ")
        t.type("n\n")
        assert t.wait() == EXIT_FAILED
        assert "error: [CANCELLED] a deposit above 100 SHARE: cancelled, nothing was sent" in (
            t.output
        )
    assert chain.market.escrow_of(who) == 0

    with Terminal(argv, env(sharedllm_home)) as t:
        t.expect("into escrow? [y/N]: ")
        t.type("y\n")
        assert t.wait() == 0 and "deposited 150 SHARE; escrow now 150 SHARE" in t.output
    assert chain.market.escrow_of(who) == 150 * WEI_PER_SHARE

    with Terminal([*argv[:2], "5", *argv[3:]], env(sharedllm_home)) as t:  # small: no question
        assert t.wait() == 0 and "[y/N]" not in t.output
    with Terminal([*argv, "--yes"], env(sharedllm_home)) as t:
        assert t.wait() == 0 and "[y/N]" not in t.output
    assert chain.market.escrow_of(who) == 305 * WEI_PER_SHARE


def test_unstake_and_escrow_withdrawal_ask_first(chain: Chain, sharedllm_home: Path) -> None:
    node = dev_account(NODE)
    config = NodeConfig("https://127.0.0.1:9100", "0x" + "01" * 32, "0x" + "ab" * 32, 0, 10, 1)
    chain.registry.stake(node, 150 * WEI_PER_SHARE, config, chain.token)
    unstake = [str(BIN / "sharedllm-node"), "unstake", "--dev-account", str(NODE)]
    with Terminal(unstake, env(sharedllm_home)) as t:
        t.expect(f"unstake node {node.address}? It leaves the active list at once, and its "
                 "stake can be withdrawn 12 min from now [y/N]: ")  # fmt: skip
        t.type("\n")  # the default is no
        assert t.wait() == EXIT_FAILED and "[CANCELLED] unstake: cancelled" in t.output
    assert chain.registry.is_active(node.address)
    with Terminal(unstake, env(sharedllm_home)) as t:
        t.expect("[y/N]: ")
        t.type("y\n")
        assert t.wait() == 0
    assert not chain.registry.is_active(node.address)

    client = dev_account(CLIENT)
    chain.market.deposit(client, 10 * WEI_PER_SHARE, chain.token)
    request = [str(BIN / "sharedllm"), "withdraw", "request", "4", "--dev-account", str(CLIENT)]
    with Terminal(request, env(sharedllm_home)) as t:
        t.expect("withdraw 4 SHARE from escrow? It can be taken out ")
        t.type("n\n")
        assert t.wait() == EXIT_FAILED
    assert chain.market.pending_withdrawal(client.address).amount == 0


def test_a_withdrawal_waits_out_its_delay_with_a_bar(
    anvil: Devnet, chain: Chain, sharedllm_home: Path
) -> None:
    client = dev_account(CLIENT)
    chain.market.deposit(client, 10 * WEI_PER_SHARE, chain.token)
    chain.market.request_withdrawal(client, 4 * WEI_PER_SHARE)
    anvil.advance_time(chain.deployment.params.withdrawal_delay - 3)
    argv = [str(BIN / "sharedllm"), "withdraw", "execute", "--wait", "--dev-account",
            str(CLIENT)]  # fmt: skip
    with Terminal(argv, env(sharedllm_home)) as t:
        t.expect("withdrawal delay  [")  # click's bar, redrawn in place
        t.expect("#")
        t.expect(f"take 4 SHARE out of escrow into {client.address}? [y/N]: ")
        t.type("y\n")
        assert t.wait() == 0 and "withdrew 4 SHARE from escrow" in t.output
    assert "withdrawal delay: " not in t.output  # no plain lines on a terminal
    assert chain.market.pending_withdrawal(client.address).amount == 0
