"""Everything a node needs to serve paid jobs, checked before it starts listening.

A node that would serve under a configuration the chain disagrees with (not staked, another
span or model, a key other than the registered one) would only ever earn refusals, so it
refuses to start and says what to fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nacl.signing import SigningKey

from sharedllm import paths
from sharedllm.chain.cli_common import open_chain, signer
from sharedllm.chain.node_keys import default_node_key_path, load_node_key, public_key_bytes32
from sharedllm.chain.registry import NodeInfo
from sharedllm.cli_base import Args
from sharedllm.errors import ConfigError
from sharedllm.model.store import ModelStore
from sharedllm.node import step_journal
from sharedllm.node.batch_settlement import BatchPolicy
from sharedllm.node.chain_view import ChainJobView
from sharedllm.node.handoff import ReceiptHandoff
from sharedllm.node.ledger import Ledger
from sharedllm.node.paid_admission import PaidAdmission
from sharedllm.node.settlement import Settler
from sharedllm.node.transcript_handlers import TranscriptAccess
from sharedllm.node.transcripts import TranscriptStore


@dataclass
class PaidNode:
    admission: PaidAdmission
    settler: Settler
    registered: NodeInfo
    transcripts: TranscriptAccess
    handoff: ReceiptHandoff
    key: SigningKey  # the registered node key: receipts, and the TLS certificate


def paid_node(args: Args, hardware: str) -> PaidNode:
    """``hardware``: the class of the device the node serves on, which must be the one it
    registered."""
    chain = open_chain(args)
    account = signer(args, chain)
    registered = chain.registry.get_node(account.address)
    if not registered.active:
        why = {
            "None": "has never staked as a node: stake first with `sharedllm-node stake "
            "--amount SHARE --endpoint URL --layers A:B --price SHARE` and the same account",
            "Unbonding": "is unbonding (it asked to unstake): `sharedllm-node status` says when "
            "`sharedllm-node withdraw` can take the stake back; stake again afterwards",
        }.get(registered.status, f"is {registered.status}")
        raise ConfigError(f"{account.address} {why}", code="NodeNotActive")
    check_hardware(registered, hardware)
    if args.plaintext:
        raise ConfigError(
            "--plaintext: paid sessions travel only over encrypted links; drop it",
            code="PLAINTEXT_REFUSED",
            field="plaintext",
        )
    if not registered.endpoint.startswith("https://"):
        raise ConfigError(
            f"the registered endpoint {registered.endpoint} is plain http, and paid sessions "
            "travel only over encrypted links: run `sharedllm-node update --endpoint "
            "https://…` first",
            code="PLAINTEXT_REFUSED",
            field="endpoint",
        )
    key_path = args.node_key or default_node_key_path()
    if not key_path.exists():
        raise ConfigError(f"--node-key: no key file at {key_path}", field="node_key")
    key = load_node_key(key_path)
    if public_key_bytes32(key).lower() != registered.pubkey.lower():
        raise ConfigError(
            f"the key in {key_path} is not the one {account.address} registered: "
            "pass the --node-key used at stake time, or `sharedllm-node update --node-key`",
            field="node_key",
        )
    state = paths.nodes_dir() / account.address
    ledger = Ledger(state / "ledger.db")
    hidden = ModelStore(args.models_dir).manifest(registered.model_id).hidden_size
    store = TranscriptStore(state / "transcripts", args.transcript_budget_mb << 20, hidden)
    step_journal.recover(store, ledger)  # sessions a crash cut short keep their served steps
    batching = None
    if args.batch_size > 0:
        batching = BatchPolicy(size=args.batch_size, age=args.batch_age)
    settler = Settler(
        chain, account, ledger, submit_delay=args.submit_delay, transcripts=store,
        after_submit=args.faults.after_submit, claim=args.faults.claim, batching=batching,
    )  # fmt: skip
    admission = PaidAdmission(ChainJobView(chain), account.address, key, ledger, settler, store)
    access = TranscriptAccess(
        store, chain.chain_id, chain.market.address, account.address, chain.court.may_judge
    )
    return PaidNode(admission, settler, registered, access, _handoff(admission), key)


def _handoff(admission: PaidAdmission) -> ReceiptHandoff:
    """Taking over a job's submission when a route's last hop died (free nodes submit nothing)."""
    view = admission.view

    def pubkeys(route: Sequence[str]) -> list[bytes]:
        return [view.hop(node).pubkey for node in route]

    return ReceiptHandoff(admission.ledger, pubkeys, admission.settler.poke)


def check_hardware(registered: NodeInfo, serving: str) -> None:
    """A staked node serves on the hardware class it registered: verifiers pick the
    tolerance rule for its work by the registered class, so a node on another device would
    be judged by the wrong rule."""
    if registered.hardware != serving:
        raise ConfigError(
            f"this node serves on {serving}, but {registered.hardware or 'no class'} is "
            f"registered: run `sharedllm-node update --hardware {serving}` first (or serve "
            "with the --device it registered)",
            code="HARDWARE_MISMATCH",
            field="hardware",
        )


def check_span(registered: NodeInfo, layers: tuple[int, int] | None) -> tuple[int, int]:
    """The span to serve: the registered one; ``--layers`` may only repeat it."""
    span = (registered.start, registered.end)
    if layers is not None and layers != span:
        raise ConfigError(
            f"--layers {layers[0]}:{layers[1]} differs from the registered span "
            f"{span[0]}:{span[1]}: run `sharedllm-node update --layers` first",
            code="SpanMismatch",
        )
    return span
