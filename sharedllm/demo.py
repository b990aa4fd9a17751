"""The end-to-end demo (``python -m sharedllm.demo``, what ``make demo`` runs).

A readable sequence of steps: start a devnet, stake three nodes that split the model's 30
layers, let a client deposit, print where every token is, shut down.
"""

from __future__ import annotations

import sys

from eth_account.signers.local import LocalAccount
from nacl.signing import SigningKey

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE, format_share
from sharedllm.chain.connection import Chain
from sharedllm.chain.devnet import Devnet
from sharedllm.chain.node_keys import public_key_bytes32
from sharedllm.chain.registry import NodeConfig
from sharedllm.errors import SharedLLMError

PLACEHOLDER_MODEL_ID = "0x" + "de" * 32
"""Used only when no model has been imported: a made-up id, not a real manifest's hash."""

SPANS = ((0, 10), (10, 20), (20, 30))
NODE_STAKE = 150 * WEI_PER_SHARE
NODE_PRICE = 10**12  # wei per token per layer
CLIENT_DEPOSIT = 100 * WEI_PER_SHARE


def step(title: str) -> None:
    print(f"\n== {title}")


def default_model_id() -> tuple[str, str]:
    """The imported default model's id, or the placeholder; with where it came from."""
    try:
        from sharedllm.model.store import ModelStore

        model_id = ModelStore().default_model_id()
    except (ImportError, SharedLLMError):
        model_id = None
    if model_id:
        return model_id, "the local model store's default model"
    return PLACEHOLDER_MODEL_ID, "PLACEHOLDER (no model imported yet)"


def show_devnet(net: Devnet) -> None:
    d = net.deployment
    assert d is not None
    print(f"anvil at {net.rpc_url}, chain id {d.chain_id}")
    print(f"ShareToken   {d.token}\nNodeRegistry {d.registry}\nJobMarket    {d.market}")


def stake_nodes(chain: Chain, model_id: str) -> list[LocalAccount]:
    step("stake three nodes that split the model's layers")
    nodes = [dev_account(i) for i in (1, 2, 3)]
    for index, (node, (start, end)) in enumerate(zip(nodes, SPANS, strict=True)):
        pubkey = public_key_bytes32(SigningKey.generate())
        cfg = NodeConfig(f"http://127.0.0.1:{9101 + index}", pubkey, model_id, start, end,
                         NODE_PRICE)  # fmt: skip
        chain.registry.stake(node, NODE_STAKE, cfg, chain.token)
    for info in chain.registry.active_nodes():
        print(
            f"node {info.address}  layers {info.start:>2}:{info.end:<2}  "
            f"stake {format_share(info.stake)} SHARE  price {info.price_per_token} wei/token/layer"
        )
    return nodes


def client_deposits(chain: Chain) -> LocalAccount:
    step("a client deposits into its job escrow")
    client = dev_account(4)
    chain.market.deposit(client, CLIENT_DEPOSIT, chain.token)
    escrow = chain.market.escrow_of(client.address)
    print(f"client {client.address} escrow {format_share(escrow)} SHARE")
    return client


def show_balances(chain: Chain, accounts: dict[str, str]) -> None:
    step("where the tokens are")
    for name, address in accounts.items():
        wallet = format_share(chain.token.balance_of(address))
        escrow = format_share(chain.market.escrow_of(address))
        stake = format_share(chain.registry.get_node(address).stake)
        print(f"{name:<8} wallet {wallet:>10}  escrow {escrow:>6}  stake {stake:>6}  SHARE")
    print(f"reward pool {format_share(chain.market.reward_pool())} SHARE")


def main() -> int:
    model_id, source = default_model_id()
    print(f"model id {model_id} ({source})")
    step("start a devnet")
    with Devnet() as net:
        show_devnet(net)
        chain = net.chain()
        nodes = stake_nodes(chain, model_id)
        client = client_deposits(chain)
        accounts = {f"node {i + 1}": n.address for i, n in enumerate(nodes)}
        show_balances(chain, {**accounts, "client": client.address})
        step("shut down")
    print("devnet stopped")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SharedLLMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
