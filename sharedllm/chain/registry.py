"""The NodeRegistry: who serves which span of which model, at what price, with what stake."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from sharedllm.chain.token import Token
from sharedllm.chain.transact import TxResult, call, call_as, send
from sharedllm.errors import ConfigError, ProtocolError
from sharedllm.protocol.node_info import short_name
from sharedllm.protocol.types import Address, ModelId

NODE_STATUS = ("None", "Active", "Unbonding")
MAX_ENDPOINT_BYTES = 256
PAGE_SIZE = 100
_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class NodeConfig:
    """What a node declares when it stakes; ``price_per_token`` is wei per position per layer."""

    endpoint: str
    pubkey: str
    model_id: ModelId
    start: int
    end: int
    price_per_token: int
    hardware: str = "cpu"  # the device class the span runs on (model/device.hardware_class)

    def __post_init__(self) -> None:
        # The same checks as the registry, so a CLI user hears about them before paying gas.
        size = len(self.endpoint.encode())
        if not 1 <= size <= MAX_ENDPOINT_BYTES:
            raise ConfigError(f"endpoint: must be 1..{MAX_ENDPOINT_BYTES} bytes", field="endpoint")
        if not (0 <= self.start < self.end < 1 << 16):
            raise ConfigError(
                f"layers: invalid span {self.start}:{self.end} (need 0 <= start < end)",
                field="layers",
            )
        if self.price_per_token < 0 or self.price_per_token >= 1 << 256:
            raise ConfigError("price: out of range", field="price")
        try:
            short_name(self.hardware, "hardware", "hardware")
        except ProtocolError as exc:
            raise ConfigError(exc.message, field="hardware") from exc
        for field, value in (("pubkey", self.pubkey), ("model-id", self.model_id)):
            if _bytes32(value, field) == bytes(32):
                raise ConfigError(f"{field}: must not be zero", field=field)

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.endpoint,
            _bytes32(self.pubkey, "pubkey"),
            _bytes32(self.model_id, "modelId"),
            self.start,
            self.end,
            self.price_per_token,
            self.hardware.encode().ljust(32, b"\0"),
        )


@dataclass(frozen=True)
class NodeInfo:
    address: Address
    stake: int
    endpoint: str
    pubkey: str
    model_id: str
    start: int
    end: int
    price_per_token: int
    status: str
    unbonding_at: int
    hardware: str = "cpu"  # the class it registered ("" for none: an older registration)

    @property
    def active(self) -> bool:
        return self.status == "Active"

    def to_json(self) -> dict[str, Any]:
        body = {k: getattr(self, k) for k in self.__dataclass_fields__}
        body["stake"] = str(self.stake)
        body["price_per_token"] = str(self.price_per_token)
        return body


@dataclass(frozen=True)
class Terms:
    """What a job is checked and priced against (``INodeRegistry.Terms``)."""

    model_id: str
    start: int
    end: int
    price_per_token: int


class Registry:
    def __init__(self, w3: Web3, contract: Any) -> None:
        self.w3 = w3
        self.contract = contract
        self.address: str = contract.address

    def min_stake(self) -> int:
        return call_as(int, self.contract.functions.minStake(), "minStake")

    def unbonding_delay(self) -> int:
        return call_as(int, self.contract.functions.unbondingDelay(), "unbondingDelay")

    def terms_lock(self) -> int:
        """Seconds between two changes of a node's model, span or price."""
        return call_as(int, self.contract.functions.termsLock(), "termsLock")

    def terms_changed_at(self, address: str) -> int:
        """When ``address`` last changed its model, span or price (0: never)."""
        return self.prior_terms(address)[1]

    def prior_terms(self, address: str) -> tuple[Terms, int]:
        """The terms ``address`` had before its last change of them, and when that was."""
        raw, changed_at = call(self.contract.functions.priorTerms(address), "priorTerms")
        model, start, end, price = raw
        return Terms("0x" + bytes(model).hex(), start, end, price), int(changed_at)

    def payable_until(self, address: str) -> int:
        """Until when work sent to ``address`` may be paid (the largest uint64 while active)."""
        return call_as(int, self.contract.functions.payableUntil(address), "payableUntil")

    def get_node(self, address: str) -> NodeInfo:
        raw = call(self.contract.functions.getNode(address), "getNode")
        return NodeInfo(
            address=Address(Web3.to_checksum_address(address)),
            stake=raw.stake,
            endpoint=raw.endpoint,
            pubkey="0x" + bytes(raw.pubkey).hex(),
            model_id="0x" + bytes(raw.modelId).hex(),
            start=raw.start,
            end=raw.end,
            price_per_token=raw.pricePerToken,
            status=NODE_STATUS[raw.status],
            unbonding_at=raw.unbondingAt,
            hardware=bytes(raw.hardware).rstrip(b"\0").decode("ascii", "replace"),
        )

    def is_active(self, address: str) -> bool:
        return call_as(bool, self.contract.functions.isActive(address), "isActive")

    def active_nodes(self) -> list[NodeInfo]:
        """Every active node, read page by page."""
        count = call(self.contract.functions.activeCount(), "activeCount")
        addresses: list[str] = []
        for offset in range(0, count, PAGE_SIZE):
            page = call(self.contract.functions.activeNodes(offset, PAGE_SIZE), "activeNodes")
            addresses.extend(page)
        return [self.get_node(a) for a in addresses]

    def stake(self, account: LocalAccount, amount: int, cfg: NodeConfig, token: Token) -> TxResult:
        """Stake (first time: register) or top up; approves the registry for ``amount``."""
        if amount:
            token.prepare_spend(account, self.address, amount, "stake")
        fn = self.contract.functions.stake(amount, cfg.as_tuple())
        return TxResult.of(send(self.w3, account, fn, "stake"))

    def update_config(self, account: LocalAccount, cfg: NodeConfig) -> TxResult:
        fn = self.contract.functions.updateConfig(cfg.as_tuple())
        return TxResult.of(send(self.w3, account, fn, "updateConfig"))

    def request_unstake(self, account: LocalAccount) -> TxResult:
        fn = self.contract.functions.requestUnstake()
        return TxResult.of(send(self.w3, account, fn, "requestUnstake"))

    def withdraw(self, account: LocalAccount) -> TxResult:
        fn = self.contract.functions.withdraw()
        return TxResult.of(send(self.w3, account, fn, "withdraw"))


def _bytes32(value: str, field: str) -> bytes:
    if not isinstance(value, str) or not _HEX32.match(value):
        raise ConfigError(f"{field}: expected 0x + 64 hex digits", field=field)
    return bytes.fromhex(value[2:])
