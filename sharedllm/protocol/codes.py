"""Job error codes and the decoder of contract reverts.

The codes are the Solidity custom error names, verbatim, so a node that refuses a job
before serving it and the chain that reverts ``submitResult`` report the same code.
``JOB_CHECKS`` lists the JobMarket's checks in the order it applies them; a node applies
them in the same order so that the first failure it reports is the one the chain would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from eth_abi.abi import decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from sharedllm.errors import ContractRevert

INVALID_ROUTE = "InvalidRoute"
INVALID_SIGNATURE = "InvalidSignature"
JOB_EXPIRED = "JobExpired"
JOB_ALREADY_SUBMITTED = "JobAlreadySubmitted"
TOO_MANY_TOKENS = "TooManyTokens"
NO_TOKENS_SERVED = "NoTokensServed"
NODE_NOT_ACTIVE = "NodeNotActive"
MODEL_MISMATCH = "ModelMismatch"
SPAN_MISMATCH = "SpanMismatch"
PRICE_ABOVE_CAP = "PriceAboveCap"
INSUFFICIENT_ESCROW = "InsufficientEscrow"
INVALID_AMENDMENT = "InvalidAmendment"
INVALID_AMENDMENT_SIGNATURE = "InvalidAmendmentSignature"

JOB_CHECKS: tuple[str, ...] = (
    INVALID_ROUTE,
    INVALID_SIGNATURE,
    JOB_EXPIRED,
    JOB_ALREADY_SUBMITTED,
    TOO_MANY_TOKENS,
    NO_TOKENS_SERVED,
    NODE_NOT_ACTIVE,
    MODEL_MISMATCH,
    SPAN_MISMATCH,
    PRICE_ABOVE_CAP,
    INSUFFICIENT_ESCROW,
)
"""submitResult's checks, in the order the contract applies them."""

OTHER_CONTRACT_ERRORS: tuple[str, ...] = (
    # NodeRegistry
    "StakeBelowMinimum",
    "NodeUnbonding",
    "InvalidSpan",
    "InvalidEndpoint",
    "InvalidPubkey",
    "InvalidModelId",
    "MarketAlreadySet",
    "UnbondingNotOver",
    "NotMarket",
    # JobMarket: escrow, settlement, over-charge proofs
    "WithdrawalNotReady",
    "NoPendingWithdrawal",
    "NotRouteNode",
    "ChallengeWindowOpen",
    "ChallengeWindowClosed",
    "JobNotPending",
    "JobUnderDispute",
    "UnknownJob",
    "InvalidHop",
    "NoOvercharge",
    "ReceiptsMismatch",
    "ReceiptsMalformed",
    INVALID_AMENDMENT,
    INVALID_AMENDMENT_SIGNATURE,
    # DisputeCourt: verifier stakes, disputes, juries
    "NotVerifier",
    "StakeLocked",
    "BondBelowMinimum",
    "AlreadyDisputed",
    "NoDispute",
    "WrongPhase",
    "DrawNotReady",
    "NotJuror",
    "AlreadyCommitted",
    "CommitClosed",
    "RevealNotOpen",
    "RevealClosed",
    "NotCommitted",
    "AlreadyRevealed",
    "CommitmentMismatch",
    "NotResolvable",
    # OpenZeppelin errors a user meets through the token
    "ERC20InsufficientBalance",
    "ERC20InsufficientAllowance",
)

UNKNOWN_REVERT = "UnknownRevert"
REVERT_STRING = "Error"
PANIC = "Panic"


def _abi_type(param: Mapping[str, Any]) -> str:
    kind = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return str(kind)


def _plain(value: Any, kind: str) -> Any:
    if kind == "address":
        return to_checksum_address(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


class RevertDecoder:
    """Maps 4-byte error selectors of the given ABIs to names and argument decoders."""

    def __init__(self, abis: Iterable[list[Mapping[str, Any]]]) -> None:
        self._errors: dict[bytes, tuple[str, list[str], list[str]]] = {
            keccak(text="Error(string)")[:4]: (REVERT_STRING, ["string"], ["reason"]),
            keccak(text="Panic(uint256)")[:4]: (PANIC, ["uint256"], ["code"]),
        }
        for abi in abis:
            for entry in abi:
                if entry.get("type") != "error":
                    continue
                types = [_abi_type(p) for p in entry.get("inputs", [])]
                names = [p.get("name") or f"arg{i}" for i, p in enumerate(entry.get("inputs", []))]
                selector = keccak(text=f"{entry['name']}({','.join(types)})")[:4]
                self._errors[selector] = (entry["name"], types, names)

    def decode(self, data: bytes | str | None, context: str = "") -> ContractRevert:
        """Turn revert data into ``ContractRevert(code=<ErrorName>)`` with named arguments."""
        if isinstance(data, str):
            data = bytes.fromhex(data.removeprefix("0x"))
        prefix = f"{context}: " if context else ""
        if not data or len(data) < 4 or data[:4] not in self._errors:
            shown = "0x" + (data or b"").hex()
            return ContractRevert(f"{prefix}reverted ({shown})", code=UNKNOWN_REVERT, data=shown)
        name, types, names = self._errors[data[:4]]
        try:
            values = decode(types, data[4:])
        except Exception:  # malformed arguments still tell us which error it was
            return ContractRevert(f"{prefix}{name}", code=name)
        args = {n: _plain(v, t) for n, v, t in zip(names, values, types, strict=True)}
        shown = ", ".join(f"{n}={v}" for n, v in args.items())
        return ContractRevert(f"{prefix}{name}({shown})", code=name, **args)
