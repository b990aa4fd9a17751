"""The shipped contract artifacts and the revert decoder built from them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_abi import encode
from eth_utils import keccak, to_checksum_address

from sharedllm.chain.artifacts import CONTRACT_NAMES, PACKAGE_DIR, abi, revert_decoder
from sharedllm.chain.export_artifacts import exported
from sharedllm.protocol.codes import JOB_CHECKS, OTHER_CONTRACT_ERRORS

HARDHAT_ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


@pytest.mark.skipif(not HARDHAT_ARTIFACTS.is_dir(), reason="contracts not built here")
@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_shipped_artifacts_match_the_build(name: str) -> None:
    shipped = json.loads((PACKAGE_DIR / f"{name}.json").read_text())
    assert shipped == exported(HARDHAT_ARTIFACTS, name), (
        f"{name}.json is stale: run `python -m sharedllm.chain.export_artifacts`"
    )


def test_every_code_is_a_contract_error() -> None:
    declared = {e["name"] for name in CONTRACT_NAMES for e in abi(name) if e["type"] == "error"}
    missing = set(JOB_CHECKS) | set(OTHER_CONTRACT_ERRORS)
    assert missing - declared == set()


def test_decoder_names_the_error_and_its_arguments() -> None:
    node = "0x" + "ab" * 20
    data = keccak(text="StakeBelowMinimum(address,uint256,uint256)")[:4] + encode(
        ["address", "uint256", "uint256"], [node, 5, 100]
    )
    revert = revert_decoder().decode(data, "stake")
    assert revert.code == "StakeBelowMinimum"
    assert revert.details["have"] == 5 and revert.details["need"] == 100
    assert revert.message == (
        f"stake: StakeBelowMinimum(account={to_checksum_address(node)}, have=5, need=100)"
    )


def test_decoder_handles_plain_and_unknown_reverts() -> None:
    reason = keccak(text="Error(string)")[:4] + encode(["string"], ["nope"])
    assert revert_decoder().decode(reason).details == {"reason": "nope"}
    unknown = revert_decoder().decode("0xdeadbeef")
    assert unknown.code == "UnknownRevert" and "0xdeadbeef" in unknown.message


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0 s"), (8, "8 s"), (899, "14 min 59 s"), (3600, "1 h"), (10_920, "3 h 2 min"),
     (90_061, "1 d 1 h")],
)  # fmt: skip
def test_waits_are_shown_in_words(seconds: int, shown: str) -> None:
    from sharedllm.chain.times import format_duration, ready_phrase

    assert format_duration(seconds) == shown
    assert ready_phrase(100, 100) == "ready now"
    assert ready_phrase(100 + seconds, 100).startswith("ready " if seconds else "ready now")
