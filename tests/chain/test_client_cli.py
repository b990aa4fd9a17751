"""``sharedllm deposit|withdraw|balance|faucet|account`` against a real anvil."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from sharedllm.chain.accounts import dev_account, load_keystore, require_dev_chain
from sharedllm.chain.amounts import WEI_PER_SHARE, format_share, parse_share
from sharedllm.chain.connection import Chain
from sharedllm.chain.deployment import Deployment
from sharedllm.chain.devnet import Devnet
from sharedllm.cli import sharedllm_main
from sharedllm.errors import ConfigError

pytestmark = pytest.mark.chain

CLIENT = 6


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = sharedllm_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_deposit_withdraw_and_balance(
    anvil: Devnet, chain: Chain, capsys: pytest.CaptureFixture[str]
) -> None:
    who = dev_account(CLIENT).address
    wallet = chain.token.balance_of(who)
    me = ("--dev-account", str(CLIENT))

    # A script without --yes and without a terminal goes ahead, as before the question was
    # asked, told to pass --yes.
    code, _, err = run(capsys, "deposit", "150", *me)
    assert code == 0 and "note: a deposit above 100 SHARE asks for confirmation" in err
    assert "pass --yes in scripts" in err
    assert run(capsys, "deposit", "0.25", *me)[1:] == (
        "deposited 0.25 SHARE; escrow now 150.25 SHARE\n",
        "",
    )
    code, out, _ = run(capsys, "balance", *me, "--json")
    shown = json.loads(out)
    assert code == 0
    assert int(shown["escrow"]) == 150 * WEI_PER_SHARE + WEI_PER_SHARE // 4
    assert int(shown["wallet"]) == wallet - int(shown["escrow"])

    code, _, err = run(capsys, "withdraw", "request", "1000", *me)
    assert code == 1 and "InsufficientEscrow" in err
    code, out, _ = run(capsys, "withdraw", "request", "100", *me)
    assert code == 0 and "ready in " in out and "timestamp" not in out
    code, _, err = run(capsys, "withdraw", "execute", *me)
    assert code == 1 and "WithdrawalNotReady" in err
    assert "ready in " in err and "nowTs" not in err  # a wait in words, not raw timestamps
    code, out, _ = run(capsys, "balance", *me)
    assert "pending withdrawal: 100 SHARE, ready in " in out

    # --wait waits out the rest of the delay, a line per step off a terminal.
    anvil.advance_time(chain.deployment.params.withdrawal_delay - 3)
    code, out, err = run(capsys, "withdraw", "execute", "--wait", "--yes", *me)
    assert code == 0 and "withdrew 100 SHARE" in out, err
    waits = [line for line in err.splitlines() if line.startswith("withdrawal delay: ")]
    assert waits[0].startswith("withdrawal delay: ready in ") and " s (" in waits[0]
    assert waits[-1] == "withdrawal delay: ready now" and "note:" not in err
    assert chain.market.escrow_of(who) == 50 * WEI_PER_SHARE + WEI_PER_SHARE // 4
    assert chain.token.balance_of(who) == wallet - chain.market.escrow_of(who)

    code, out, _ = run(capsys, "balance", "--address", who)
    assert "escrow:  50.25 SHARE" in out


def test_faucet_mints_on_the_devnet(chain: Chain, capsys: pytest.CaptureFixture[str]) -> None:
    fresh = "0x" + "ab" * 20
    code, _, _ = run(capsys, "faucet", "12.5", "--address", fresh)
    assert code == 0
    assert chain.token.balance_of(fresh) == 12 * WEI_PER_SHARE + WEI_PER_SHARE // 2


def test_deposit_with_a_keystore_account(
    chain: Chain, sharedllm_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    password = tmp_path / "password"
    password.write_text("correct horse\n")
    code, out, _ = run(capsys, "account", "new", "--password-file", str(password), "--json")
    created = json.loads(out)
    assert code == 0 and Path(created["keystore"]).parent == sharedllm_home / "keystores"
    assert "correct horse" not in out
    code, out, _ = run(capsys, "account", "list")
    assert created["address"] in out

    chain.token.transfer(dev_account(0), created["address"], 10 * WEI_PER_SHARE)
    chain.w3.eth.send_transaction(
        {"from": dev_account(0).address, "to": created["address"], "value": 10**18}
    )
    keystore = ("--keystore", created["keystore"], "--password-file", str(password))
    code, _, err = run(capsys, "deposit", "4", *keystore)
    assert (code, err) == (0, "")
    assert chain.market.escrow_of(created["address"]) == 4 * WEI_PER_SHARE

    password.write_text("wrong")
    code, _, err = run(capsys, "deposit", "4", *keystore)
    assert code == 1 and "wrong password" in err
    account = load_keystore(Path(created["keystore"]), "correct horse")
    assert account.address == created["address"]


def test_wrong_chain_and_missing_code_are_named(
    anvil: Devnet, deployment: Deployment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other_chain = tmp_path / "other-chain.json"
    replace(deployment, chain_id=1).save(other_chain)
    code, _, err = run(capsys, "balance", "--dev-account", "1", "--deployment", str(other_chain))
    assert code == 1 and "wrong chain" in err and "chain 31337" in err

    no_code = tmp_path / "no-code.json"
    replace(deployment, market="0x" + "12" * 20).save(no_code)
    code, _, err = run(capsys, "balance", "--dev-account", "1", "--deployment", str(no_code))
    assert code == 1 and "unknown deployment: no JobMarket code" in err


def test_dev_accounts_are_refused_off_the_devnet() -> None:
    require_dev_chain(31337)
    with pytest.raises(ConfigError, match="only works on a local devnet"):
        require_dev_chain(1)
    assert dev_account(0).address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


@pytest.mark.parametrize(
    ("text", "wei"), [("150", 150 * 10**18), ("0.5", 5 * 10**17), ("1e-18", 1), ("0", 0)]
)
def test_share_amounts(text: str, wei: int) -> None:
    assert parse_share(text) == wei
    assert parse_share(format_share(wei)) == wei


@pytest.mark.parametrize("text", ["-1", "abc", "0.0000000000000000001", "nan", "inf", ""])
def test_bad_share_amounts(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_share(text)
