"""The network as the chain records it, checked against what each node says right now.

For every active registry node: its registration, whether ``/info`` answers within a short
timeout, and whether what it answers agrees with what it registered (a node serving another
span or model than registered fails every paid job with ``SpanMismatch`` /
``ModelMismatch``). Per model: how many nodes serve each layer, and the gaps.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

from sharedllm.chain.connection import Chain
from sharedllm.chain.registry import NodeInfo as RegisteredNode
from sharedllm.client.registry_directory import RegistryDirectory, normalised_endpoint
from sharedllm.errors import ModelError, SharedLLMError
from sharedllm.model.store import ModelStore
from sharedllm.peers.http import PeerClient
from sharedllm.peers.probe import Candidate, probe
from sharedllm.placement.registry_gaps import gaps, layer_coverage

PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class NodeRow:
    record: RegisteredNode
    candidate: Candidate | None  # None: not probed, or no well-formed answer
    problem: str | None  # why the node cannot serve as registered, if it cannot

    @property
    def answers(self) -> bool:
        return self.candidate is not None

    @property
    def moving_to(self) -> tuple[int, int] | None:
        """The layers the node said it is moving to (``/info``), if it is moving."""
        return self.candidate.info.moving_to if self.candidate is not None else None

    def to_json(self) -> dict[str, Any]:
        r = self.record
        return {
            "address": r.address,
            "endpoint": r.endpoint,
            "pubkey": r.pubkey,
            "modelId": r.model_id,
            "span": [r.start, r.end],
            "hardware": r.hardware,
            "pricePerToken": str(r.price_per_token),
            "stake": str(r.stake),
            "status": r.status,
            "answers": self.answers,
            "rttMs": round(self.candidate.rtt_ms, 1) if self.candidate else None,
            "movingTo": list(self.moving_to) if self.moving_to else None,
            "problem": self.problem,
        }


@dataclass(frozen=True)
class ModelCoverage:
    model_id: str
    num_layers: int
    layers_from: str  # "option", "manifest", "info" or "registry" (a lower bound only)
    coverage: list[int]  # registered active nodes per layer
    answering: list[int] | None  # of those, nodes that answered as registered (None: no probe)
    rows: list[NodeRow]

    @property
    def gaps(self) -> list[tuple[int, int]]:
        return gaps(self.coverage)

    def to_json(self) -> dict[str, Any]:
        return {
            "modelId": self.model_id,
            "numLayers": self.num_layers,
            "numLayersFrom": self.layers_from,
            "coverage": self.coverage,
            "answeringCoverage": self.answering,
            "gaps": [list(g) for g in self.gaps],
            "answeringGaps": [list(g) for g in gaps(self.answering)] if self.answering else None,
        }


@dataclass(frozen=True)
class NetworkView:
    chain_id: int
    registry: str
    rows: list[NodeRow]
    models: list[ModelCoverage]
    probed: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "chainId": self.chain_id,
            "registry": self.registry,
            "probed": self.probed,
            "nodes": [row.to_json() for row in self.rows],
            "models": [m.to_json() for m in self.models],
        }


async def read_network(
    chain: Chain,
    model_id: str | None = None,
    *,
    probe_timeout: float | None = PROBE_TIMEOUT_S,
    num_layers: int | None = None,
    store: ModelStore | None = None,
) -> NetworkView:
    """Registry records, probed concurrently unless ``probe_timeout`` is None."""
    records = await RegistryDirectory(chain, model_id, hardware=None).records(refresh=True)
    if probe_timeout is None:
        rows = [NodeRow(r, None, None) for r in records]
    else:
        async with PeerClient() as peers:
            rows = list(
                await asyncio.gather(*(_probe_row(peers, r, probe_timeout) for r in records))
            )
    probed = probe_timeout is not None
    models = []
    for mid in dict.fromkeys(r.model_id for r in records):
        served_by = [row for row in rows if row.record.model_id == mid]
        layers, source = (
            (num_layers, "option") if num_layers else _known_layers(mid, served_by, store)
        )
        rows = [_past_the_model(row, mid, layers) for row in rows]
        served_by = [row for row in rows if row.record.model_id == mid]
        models.append(_coverage(mid, served_by, layers, source, probed))
    return NetworkView(chain.chain_id, chain.registry.address, rows, models, probed)


async def _probe_row(peers: PeerClient, record: RegisteredNode, timeout: float) -> NodeRow:
    url = normalised_endpoint(record.endpoint)
    if url is None:
        return NodeRow(record, None, "registered endpoint is not an http(s) URL")
    peers.trust.expect(url, bytes.fromhex(record.pubkey[2:]))
    try:
        found = await probe(peers, url, timeout)
    except SharedLLMError as exc:
        return NodeRow(record, None, f"no answer from /info: {exc.message[:120]}")
    return NodeRow(record, found, _disagreement(record, found))


def _disagreement(record: RegisteredNode, found: Candidate) -> str | None:
    info = found.info
    if info.model_id != record.model_id:
        return f"/info serves model {info.model_id}, registered {record.model_id}"
    if (info.start, info.end) != (record.start, record.end):
        return f"/info serves {info.start}:{info.end}, registered {record.start}:{record.end}"
    if info.public_key is not None and info.public_key.lower() != record.pubkey:
        return "/info shows another public key than registered"
    return None


def _past_the_model(row: NodeRow, model_id: str, layers: int) -> NodeRow:
    """The registry cannot know a model's depth, so a span such as 10:40 on a 30-layer model
    is accepted there; it is flagged here, and no client routes through it."""
    r = row.record
    if r.model_id != model_id or r.end <= layers:
        return row
    problem = f"registered span {r.start}:{r.end} is past the model's {layers} layers"
    return replace(row, problem=problem + (f"; {row.problem}" if row.problem else ""))


def _coverage(
    model_id: str, rows: list[NodeRow], layers: int, source: str, probed: bool
) -> ModelCoverage:
    spans = [(r.record.start, r.record.end) for r in rows]
    live = [(r.record.start, r.record.end) for r in rows if r.answers and r.problem is None]
    return ModelCoverage(
        model_id,
        layers,
        source,
        layer_coverage(spans, layers),
        layer_coverage(live, layers) if probed else None,
        rows,
    )


def _known_layers(model_id: str, rows: list[NodeRow], store: ModelStore | None) -> tuple[int, str]:
    """The model's layer count from the most trustworthy source at hand.

    A local manifest is content-addressed by the model id, so it cannot lie; a node's
    ``/info`` is the node's word; the highest registered span end is a lower bound that at
    least draws every registered layer, when nothing better is known.
    """
    try:
        return (store or ModelStore()).manifest(model_id).num_layers, "manifest"
    except (ModelError, OSError):
        pass
    claimed = [
        r.candidate.info.num_layers
        for r in rows
        if r.candidate and r.candidate.info.model_id == model_id
    ]
    if claimed:  # a registered span past what the nodes serving it report is flagged
        return max(claimed), "info"
    return max((r.record.end for r in rows), default=1), "registry"
