"""The SHARE token: balances, allowances, and the devnet faucet."""

from __future__ import annotations

from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from sharedllm.chain.amounts import format_share
from sharedllm.chain.transact import TxResult, call_as, send
from sharedllm.errors import ChainError


class Token:
    def __init__(self, w3: Web3, contract: Any) -> None:
        self.w3 = w3
        self.contract = contract
        self.address: str = contract.address

    def balance_of(self, owner: str) -> int:
        return call_as(
            int, self.contract.functions.balanceOf(Web3.to_checksum_address(owner)), "balanceOf"
        )

    def allowance(self, owner: str, spender: str) -> int:
        return call_as(
            int,
            self.contract.functions.allowance(Web3.to_checksum_address(owner), spender),
            "allowance",
        )

    def total_supply(self) -> int:
        return call_as(int, self.contract.functions.totalSupply(), "totalSupply")

    def owner(self) -> str:
        return call_as(str, self.contract.functions.owner(), "owner")

    def transfer(self, account: LocalAccount, to: str, amount: int) -> TxResult:
        fn = self.contract.functions.transfer(Web3.to_checksum_address(to), amount)
        return TxResult.of(send(self.w3, account, fn, "transfer"))

    def mint(self, owner: LocalAccount, to: str, amount: int) -> TxResult:
        """Faucet: only the deployer (token owner) may mint."""
        fn = self.contract.functions.mint(Web3.to_checksum_address(to), amount)
        return TxResult.of(send(self.w3, owner, fn, "mint"))

    def approve(self, account: LocalAccount, spender: str, amount: int) -> TxResult:
        fn = self.contract.functions.approve(spender, amount)
        return TxResult.of(send(self.w3, account, fn, "approve"))

    def prepare_spend(self, account: LocalAccount, spender: str, amount: int, what: str) -> None:
        """Check the balance covers ``amount`` and approve ``spender`` for it if needed.

        Checking first turns the token's bare ``ERC20InsufficientBalance`` into a message
        that says which command needed how much.
        """
        have = self.balance_of(account.address)
        if have < amount:
            raise ChainError(
                f"{what}: insufficient SHARE balance: have {format_share(have)}, "
                f"need {format_share(amount)}",
                code="INSUFFICIENT_BALANCE",
                have=have,
                need=amount,
            )
        if self.allowance(account.address, spender) < amount:
            self.approve(account, spender, amount)
