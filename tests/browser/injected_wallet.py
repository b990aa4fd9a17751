"""A stand-in for a browser wallet: an EIP-1193 ``window.ethereum`` whose requests the test
answers in Python.

Reads and transactions go to anvil (its dev accounts are unlocked, so it accepts
``eth_sendTransaction`` from them); typed data is signed with the dev account's key, as a
wallet would after the user clicked "Sign". The test can make it refuse signatures (EIP-1193
error 4001) or sit on another chain, optionally one it has never heard of (4902), so the
page must add the chain before it can switch.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount

USER_REJECTED = 4001
UNKNOWN_CHAIN = 4902
UNSUPPORTED = 4200

PROVIDER_JS = """
(() => {
  const listeners = {};
  const emit = (event, arg) => (listeners[event] || []).slice().forEach((f) => f(arg));
  window.ethereum = {
    isSharedLLMTestWallet: true,
    async request({ method, params }) {
      const reply = JSON.parse(await window.__testWallet(method, JSON.stringify(params ?? [])));
      for (const [event, arg] of reply.emit || []) setTimeout(() => emit(event, arg), 0);
      if (reply.error) {
        const error = new Error(reply.error.message);
        error.code = reply.error.code;
        if (reply.error.data !== undefined) error.data = reply.error.data;
        throw error;
      }
      return reply.result;
    },
    on(event, fn) { (listeners[event] ||= []).push(fn); return this; },
    removeListener(event, fn) {
      listeners[event] = (listeners[event] || []).filter((f) => f !== fn);
      return this;
    },
  };
})();
"""


class WalletError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.data = data


@dataclass
class InjectedWallet:
    account: LocalAccount
    rpc_url: str
    chain_id: int  # the chain the wallet is on now
    refuse_signatures: bool = False
    knows_chain: bool = True  # False: switching needs wallet_addEthereumChain first
    connected: bool = False
    calls: list[str] = field(default_factory=list)
    signed: list[dict[str, Any]] = field(default_factory=list)

    def install(self, page: Any) -> None:
        page.expose_function("__testWallet", self._handle)
        page.add_init_script(PROVIDER_JS)

    def _handle(self, method: str, params_json: str) -> str:
        self.calls.append(method)
        emit: list[list[Any]] = []
        try:
            result = self._answer(method, json.loads(params_json), emit)
            body: dict[str, Any] = {"result": result}
        except WalletError as exc:
            body = {"error": {"code": exc.code, "message": str(exc), "data": exc.data}}
        body["emit"] = emit
        return json.dumps(body)

    def _answer(self, method: str, params: list[Any], emit: list[list[Any]]) -> Any:
        address = self.account.address
        if method == "eth_requestAccounts":
            self.connected = True
            return [address]
        if method == "eth_accounts":
            return [address] if self.connected else []
        if method == "eth_chainId":
            return hex(self.chain_id)
        if method == "net_version":
            return str(self.chain_id)
        if method == "wallet_switchEthereumChain":
            wanted = int(params[0]["chainId"], 16)
            if not self.knows_chain:
                raise WalletError(UNKNOWN_CHAIN, f"Unrecognized chain ID {hex(wanted)}")
            return self._switch(wanted, emit)
        if method == "wallet_addEthereumChain":
            self.knows_chain = True
            return self._switch(int(params[0]["chainId"], 16), emit)
        if method == "eth_signTypedData_v4":
            if params[0].lower() != address.lower():
                raise WalletError(USER_REJECTED, "asked to sign for another account")
            if self.refuse_signatures:
                raise WalletError(USER_REJECTED, "User rejected the request.")
            message = json.loads(params[1])
            self.signed.append(message)
            return "0x" + bytes(self.account.sign_typed_data(full_message=message).signature).hex()
        if method in ("eth_sign", "personal_sign", "eth_signTransaction"):
            raise WalletError(UNSUPPORTED, f"{method} is not supported by the test wallet")
        return self._forward(method, params)

    def _switch(self, chain_id: int, emit: list[list[Any]]) -> None:
        if chain_id != self.chain_id:
            self.chain_id = chain_id
            emit.append(["chainChanged", hex(chain_id)])
        return None

    def _forward(self, method: str, params: list[Any]) -> Any:
        request = urllib.request.Request(
            self.rpc_url,
            data=json.dumps(
                {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            reply = json.loads(response.read())
        if "error" in reply:
            error = reply["error"]
            raise WalletError(
                error.get("code", -32603), error.get("message", "RPC error"), error.get("data")
            )
        return reply["result"]
