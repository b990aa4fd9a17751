"""``sharedllm-node stake|update|unstake|withdraw|status`` against a real anvil."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from chain_helpers import MODEL_ID

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.connection import Chain
from sharedllm.chain.devnet import Devnet
from sharedllm.chain.node_keys import load_node_key, public_key_bytes32
from sharedllm.chain.registry import NodeConfig
from sharedllm.cli import node_main

pytestmark = pytest.mark.chain

NODE = 5


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = node_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def stake_args(
    tmp_path: Path, amount: str = "150", layers: str = "0:10", scheme: str = "https"
) -> list[str]:
    return [
        "stake", "--dev-account", str(NODE), "--amount", amount,
        "--endpoint", f"{scheme}://127.0.0.1:9000", "--node-key", str(tmp_path / "node.key"),
        "--model-id", MODEL_ID, "--layers", layers, "--price", "0.000001",
    ]  # fmt: skip


def test_a_plain_http_endpoint_is_refused_and_nothing_is_staked(
    anvil: Devnet, chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Proof of concept: an http endpoint was once staked with only a warning, and every
    client's prompt then crossed the network in plaintext. Now neither stake nor update
    registers one, and the tokens stay in the wallet."""
    address = dev_account(NODE).address
    wallet = chain.token.balance_of(address)
    code, out, err = run(capsys, *stake_args(tmp_path, scheme="http"))
    assert (code, out) == (1, "")
    assert err.startswith("error: [PLAINTEXT_REFUSED] --endpoint http://127.0.0.1:9000: a paid")
    assert chain.registry.get_node(address).status == "None"
    assert chain.token.balance_of(address) == wallet
    assert run(capsys, *stake_args(tmp_path))[0] == 0
    code, _, err = run(
        capsys, "update", "--dev-account", str(NODE), "--endpoint", "http://127.0.0.1:9000"
    )
    assert code == 1 and "[PLAINTEXT_REFUSED]" in err
    assert chain.registry.get_node(address).endpoint == "https://127.0.0.1:9000"


def test_stake_update_unstake_withdraw(
    anvil: Devnet, chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    address = dev_account(NODE).address
    wallet_before = chain.token.balance_of(address)

    code, out, err = run(capsys, *stake_args(tmp_path), "--json")
    assert (code, err) == (0, "")
    shown = json.loads(out)
    node = chain.registry.get_node(address)
    assert node.status == "Active" and node.stake == 150 * WEI_PER_SHARE
    assert (node.start, node.end, node.price_per_token) == (0, 10, 10**12)
    assert node.pubkey == public_key_bytes32(load_node_key(tmp_path / "node.key"))
    assert (tmp_path / "node.key").stat().st_mode & 0o777 == 0o600
    assert shown["stake"] == str(150 * WEI_PER_SHARE)

    code, out, _ = run(capsys, "update", "--dev-account", str(NODE), "--layers", "10:20")
    assert code == 0 and "layers:   10:20" in out
    node = chain.registry.get_node(address)
    assert (node.start, node.end, node.endpoint) == (10, 20, "https://127.0.0.1:9000")

    # A second change of span or price within the terms lock is refused before it is sent
    # (jobs sent under 10:20 must stay checkable against it); the endpoint changes freely.
    code, _, err = run(capsys, "update", "--dev-account", str(NODE), "--price", "0.000002")
    assert code == 1 and "[TermsChangeTooSoon]" in err
    assert "the next change can come in " in err and "once per 10 min" in err
    assert chain.registry.get_node(address).price_per_token == 10**12
    code, _, _ = run(capsys, "update", "--dev-account", str(NODE), "--endpoint",
                     "https://127.0.0.1:9001")  # fmt: skip
    assert code == 0

    code, out, _ = run(capsys, "stake", "--dev-account", str(NODE), "--amount", "0.5")
    assert code == 0
    assert chain.registry.get_node(address).stake == 150 * WEI_PER_SHARE + WEI_PER_SHARE // 2

    code, out, _ = run(capsys, "unstake", "--dev-account", str(NODE), "--yes")
    assert code == 0 and "Unbonding" in out
    assert not chain.registry.is_active(address)

    code, _, err = run(capsys, "withdraw", "--dev-account", str(NODE))
    assert code == 1 and "UnbondingNotOver" in err and "ready in " in err

    anvil.advance_time(chain.deployment.params.unbonding_delay - 2)
    code, out, err = run(capsys, "withdraw", "--dev-account", str(NODE), "--wait", "-y")
    assert code == 0 and "unbonding delay: ready now" in err
    assert chain.registry.get_node(address).status == "None"
    assert chain.token.balance_of(address) == wallet_before

    code, out, _ = run(capsys, "status", "--address", address, "--json")
    assert code == 0 and json.loads(out)["status"] == "None"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"amount": "50"}, "StakeBelowMinimum"),
        ({"layers": "10:5"}, "invalid span"),
        ({"layers": "ten"}, "--layers"),
        ({"amount": "1000000"}, "insufficient SHARE balance"),
        ({"amount": "-3"}, "non-negative"),
    ],
)
def test_bad_stake_input_is_one_line(
    chain: Chain,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, str],
    expected: str,
) -> None:
    code, out, err = run(capsys, *stake_args(tmp_path, **change))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and expected in err
    assert chain.registry.get_node(dev_account(NODE).address).status == "None"


def _node_cli(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from sharedllm.cli import sharedllm_node; sharedllm_node()", *argv],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )


def test_node_program_errors_without_traceback(
    anvil: Devnet, chain: Chain, sharedllm_home: Path, tmp_path: Path
) -> None:
    env = {"SHAREDLLM_HOME": str(sharedllm_home)}
    cases = {
        "unreachable RPC": (["status", "--dev-account", "1", "--rpc-url", "http://127.0.0.1:9"],
                            "cannot reach the RPC"),
        "below minimum": (stake_args(tmp_path, amount="99.9"), "below the minimum stake"),
        "no deployment": (["status", "--dev-account", "1", "--deployment", str(tmp_path / "x")],
                          "no deployment file"),
        "wrong password": (["unstake", "--keystore", str(_keystore(tmp_path)),
                            "--password-file", str(_password(tmp_path, "wrong"))],
                           "wrong password"),
        "locked keystore": (["unstake", "--keystore", str(tmp_path / "key.json")],
                            "keystore is locked"),
    }  # fmt: skip
    for name, (argv, expected) in cases.items():
        result = _node_cli(*argv, env=env)
        assert result.returncode != 0, name
        assert result.stderr.count("\n") == 1, (name, result.stderr)
        assert expected in result.stderr, (name, result.stderr)
        assert "Traceback" not in result.stderr


def _password(tmp_path: Path, text: str) -> Path:
    path = tmp_path / f"password-{text}"
    path.write_text(text + "\n")
    return path


def _keystore(tmp_path: Path) -> Path:
    from sharedllm.chain.accounts import new_keystore

    _, path = new_keystore("right", tmp_path / "key.json")
    return path


@pytest.mark.model
def test_a_span_past_the_models_last_layer_is_refused(
    chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str], sharedllm_home: Path,
    model_home: Path, manifest,
) -> None:  # fmt: skip
    """The registry cannot know a model's depth: the command refuses 10:40 on 30 layers."""
    (sharedllm_home / "models").symlink_to(model_home / "models")
    args = [a if a != MODEL_ID else manifest.model_id for a in stake_args(tmp_path)]
    args[args.index("0:10")] = "10:40"
    code, out, err = run(capsys, *args)
    assert code == 1 and out == ""
    assert "10:40" in err and "30 layers" in err
    assert chain.registry.get_node(dev_account(NODE).address).status == "None"


def test_running_an_account_that_never_staked_says_to_stake_first(
    chain: Chain, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "run", "--dev-account", "9", "--no-host", "--layers", "0:10")
    assert code == 1 and out == ""
    assert "has never staked as a node" in err and "sharedllm-node stake" in err
    assert "(None)" not in err


def test_a_paid_node_refuses_plaintext(
    anvil: Devnet, chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A paid node never serves plain http: not when asked to, and not at an http endpoint
    registered by other means (the registry itself takes any string)."""
    assert run(capsys, *stake_args(tmp_path))[0] == 0
    serve = ["run", "--dev-account", str(NODE), "--no-host", "--layers", "0:10",
             "--node-key", str(tmp_path / "node.key")]  # fmt: skip
    code, out, err = run(capsys, *serve, "--plaintext")
    assert (code, out) == (1, "")
    assert "[PLAINTEXT_REFUSED] --plaintext: paid sessions travel only over encrypted" in err
    registered = chain.registry.get_node(dev_account(NODE).address)
    config = NodeConfig(
        "http://127.0.0.1:9000", registered.pubkey, registered.model_id, 0, 10, 10**12
    )
    chain.registry.update_config(dev_account(NODE), config)
    code, out, err = run(capsys, *serve)
    assert (code, out) == (1, "")
    assert "the registered endpoint http://127.0.0.1:9000 is plain http" in err
    assert "sharedllm-node update --endpoint https://" in err


def test_the_hardware_class_is_registered_and_a_node_on_another_refuses_to_start(
    anvil: Devnet, chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Verifiers pick the tolerance rule for a hop by the class its node registered, so a
    node serving on another class would be judged by the wrong rule: it does not start."""
    address = dev_account(NODE).address
    code, _, err = run(capsys, *stake_args(tmp_path), "--hardware", "gpu, the fast one")
    assert code == 1 and "[BAD_CONFIG]" in err and "short name" in err
    assert chain.registry.get_node(address).status == "None"
    assert run(capsys, *stake_args(tmp_path))[0] == 0
    assert chain.registry.get_node(address).hardware == "cpu"  # this machine's, by default
    code, out, _ = run(capsys, "update", "--dev-account", str(NODE), "--hardware", "cuda-sm86")
    assert code == 0 and "hardware: cuda-sm86" in out
    assert chain.registry.get_node(address).hardware == "cuda-sm86"
    code, out, err = run(
        capsys, "run", "--dev-account", str(NODE), "--no-host", "--layers", "0:10",
        "--node-key", str(tmp_path / "node.key"), "--device", "cpu",
    )  # fmt: skip
    assert (code, out) == (1, "")
    assert err.startswith("error: [HARDWARE_MISMATCH] this node serves on cpu, but cuda-sm86")
    assert "sharedllm-node update --hardware cpu" in err
