"""Send a contract call as a signed transaction and turn every failure into a project error.

Transactions are signed locally (keystore or dev key) and sent raw, so the same code works
against anvil and a real RPC that holds no keys. Gas estimation runs the call first; a
revert surfaces there with its data, which the shared decoder names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import requests
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractLogicError, TimeExhausted, Web3Exception
from web3.types import TxParams, TxReceipt

from sharedllm.chain.artifacts import revert_decoder
from sharedllm.errors import ChainError, ContractRevert

T = TypeVar("T")

RECEIPT_TIMEOUT_S = 120


@dataclass(frozen=True)
class TxResult:
    """What a sent transaction left behind, for printing and gas accounting."""

    tx_hash: str
    block: int
    gas_used: int

    @classmethod
    def of(cls, receipt: Any) -> TxResult:
        tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
        return cls(tx_hash, receipt["blockNumber"], receipt["gasUsed"])


def as_revert(exc: ContractLogicError, context: str) -> ContractRevert:
    data = exc.data
    if isinstance(data, dict):  # some nodes wrap the data in an object
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        return revert_decoder().decode(data, context)
    return ContractRevert(f"{context}: reverted ({exc.message or exc})", code="UnknownRevert")


def rpc(read: Callable[[], T], context: str) -> T:
    """Any other read from the RPC (blocks, logs, code); transport failures become ChainError."""
    try:
        return read()
    except (OSError, ValueError, Web3Exception) as exc:
        raise ChainError(f"{context}: RPC call failed: {describe_failure(exc)}") from None


def call(fn: Any, context: str) -> Any:
    """A read-only call; reverts become ContractRevert, transport failures ChainError."""
    try:
        return fn.call()
    except ContractLogicError as exc:
        raise as_revert(exc, context) from None
    except (OSError, ValueError, Web3Exception) as exc:
        raise ChainError(f"{context}: RPC call failed: {describe_failure(exc)}") from None


def call_as(kind: type[T], fn: Any, context: str) -> T:
    """``call``, with the answer checked to be a ``kind`` (an int, a bool, a str): what the
    chain returns crosses a boundary like any peer's answer."""
    value = call(fn, context)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ChainError(f"{context}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def send(
    w3: Web3, account: LocalAccount, fn: Any, context: str, value: int = 0, gas: int | None = None
) -> TxReceipt:
    """Sign, send and wait for one transaction; raises ContractRevert if it reverts.

    ``gas`` skips estimation, for calls whose success depends on the time of the block that
    will include them (estimation runs against the latest block, whose clock on a quiet
    devnet stands still)."""
    try:
        params: dict[str, Any] = {
            "from": account.address,
            "nonce": w3.eth.get_transaction_count(account.address, "pending"),
            "chainId": w3.eth.chain_id,
            "value": value,
        }
        if gas is not None:
            params["gas"] = gas
        tx = fn.build_transaction(params)
        signed = account.sign_transaction(tx)
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)
    except ContractLogicError as exc:
        raise as_revert(exc, context) from None
    except TimeExhausted:
        raise ChainError(f"{context}: no receipt after {RECEIPT_TIMEOUT_S} s") from None
    except (OSError, ValueError, Web3Exception) as exc:
        raise ChainError(f"{context}: transaction failed: {describe_failure(exc)}") from None
    if receipt["status"] != 1:
        raise _replayed_revert(w3, tx, receipt, context)
    return receipt


def _replayed_revert(w3: Web3, tx: dict[str, Any], receipt: TxReceipt, context: str) -> Exception:
    """A mined revert carries no data; replaying the call at its block recovers the error."""
    replay = cast(TxParams, {k: tx[k] for k in ("from", "to", "data", "value") if k in tx})
    try:
        w3.eth.call(replay, receipt["blockNumber"] - 1)
    except ContractLogicError as exc:
        return as_revert(exc, context)
    except Exception:  # the replay is best effort; the plain failure below still stands
        pass
    return ContractRevert(f"{context}: transaction reverted", code="UnknownRevert")


def describe_failure(exc: BaseException) -> str:
    """A short cause; requests' own messages run to several hundred characters."""
    if isinstance(exc, requests.exceptions.Timeout):
        return "the RPC did not answer in time"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "the RPC refused the connection or is unreachable"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]
