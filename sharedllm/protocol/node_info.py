"""What a node says about itself at ``GET /info``; the client plans routes from it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from sharedllm.errors import ProtocolError
from sharedllm.protocol.types import ModelId, parse_model_id


@dataclass(frozen=True)
class NodeInfo:
    version: str
    model_id: ModelId
    start: int
    end: int
    num_layers: int
    hidden_size: int
    sessions_open: int
    sessions_max: int
    free_cache_tokens: int
    ms_per_token: float  # measured compute for a one-token step over the whole span
    price: int  # SHARE wei per position per layer (prompt and answer tokens alike)
    public_key: str | None = None
    address: str | None = None  # the staking account, on a paid network
    # Load (older nodes leave these out): steps waiting for or running on the node's worker,
    # the most one-token steps it runs as one batch, and how many a batch held lately.
    queued_steps: int = 0
    max_batch: int = 1
    batch_rows: float = 1.0
    batched_steps: int = 0  # one-token steps run in a batch of two or more since start
    precision: str = "float32"  # the served model's layers (its manifest's dtype; in the id)
    hardware: str = "cpu"  # the device class the span runs on: cpu, mps, cuda-sm86, ...
    # Where the node is moving to (it serves ``start:end`` until then and opens no session
    # meanwhile); None when it stays.
    moving_to: tuple[int, int] | None = None
    # One stream's tokens per second through the whole span, from the node's fastest recent
    # step (0: not measured, or an older node). Nodes weigh each other by it when they
    # decide where to move.
    tokens_per_s: float = 0.0

    @property
    def expected_ms_per_token(self) -> float:
        """What a new session's one-token step should take here now: its own batch, after
        the batches that the steps already waiting fill (``ms_per_token`` is one batch)."""
        waves = -(-self.queued_steps // max(1, self.max_batch))
        return self.ms_per_token * (1 + waves)

    @property
    def layers(self) -> int:
        return self.end - self.start

    @property
    def planned_span(self) -> tuple[int, int]:
        """The layers this node will serve: its target while it moves, else its span."""
        return self.moving_to or (self.start, self.end)

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["span"] = [body.pop("start"), body.pop("end")]
        body["moving_to"] = list(self.moving_to) if self.moving_to else None
        return body


def parse_node_info(body: Any) -> NodeInfo:
    """Strict on the fields we use; unknown fields are ignored so newer nodes stay usable."""
    if not isinstance(body, dict):
        raise ProtocolError("info: expected a JSON object", field="info")

    def get(name: str, kind: type | tuple[type, ...]) -> Any:
        value = body.get(name)
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ProtocolError(f"info.{name}: missing or of the wrong type", field=name)
        return value

    start, end = _span(get("span", list), "span")
    moving = body.get("moving_to")
    if moving is not None and not isinstance(moving, list):
        raise ProtocolError("info.moving_to: expected [start, end] or null", field="moving_to")
    ms = float(get("ms_per_token", (int, float)))
    if not math.isfinite(ms) or ms < 0:
        raise ProtocolError("info.ms_per_token: expected a finite number >= 0", field="ms")
    address = body.get("address")
    if address is not None and not isinstance(address, str):
        raise ProtocolError("info.address: expected a string or null", field="address")
    key = body.get("public_key")
    if key is not None and not isinstance(key, str):
        raise ProtocolError("info.public_key: expected a string or null", field="public_key")
    counts = {
        name: get(name, int)
        for name in (
            "num_layers",
            "hidden_size",
            "sessions_open",
            "sessions_max",
            "free_cache_tokens",
            "price",
        )
    }
    for name, default in (("queued_steps", 0), ("max_batch", 1), ("batched_steps", 0)):
        counts[name] = get(name, int) if name in body else default
    if any(v < 0 for v in counts.values()) or counts["max_batch"] < 1:
        raise ProtocolError("info: counts must not be negative", field="info")
    rows = _optional_figure(body, "batch_rows", 1.0)
    speed = _optional_figure(body, "tokens_per_s", 0.0)
    return NodeInfo(
        version=get("version", str),
        precision=_short_name(body, "precision", "float32"),
        hardware=_short_name(body, "hardware", "cpu"),
        model_id=parse_model_id(body.get("model_id"), "model_id"),
        start=start,
        end=end,
        ms_per_token=ms,
        batch_rows=rows,
        tokens_per_s=speed,
        public_key=key,
        address=address,
        moving_to=_span(moving, "moving_to") if moving is not None else None,
        **counts,
    )


def _optional_figure(body: dict[str, Any], name: str, default: float) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(f"info.{name}: expected a number", field=name)
    if not math.isfinite(value) or value < 0:
        raise ProtocolError(f"info.{name}: expected a finite number >= 0", field=name)
    return float(value)


def _span(span: list[Any], name: str) -> tuple[int, int]:
    if len(span) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) for x in span):
        raise ProtocolError(f"info.{name}: expected [start, end]", field=name)
    start, end = span
    if not 0 <= start < end:
        raise ProtocolError(f"info.{name}: expected 0 <= start < end", field=name)
    return start, end


def _short_name(body: dict[str, Any], name: str, default: str) -> str:
    """A short word such as ``int8`` or ``cuda-sm86``; older nodes leave it out."""
    return short_name(body.get(name, default), f"info.{name}", name)


def short_name(text: Any, what: str, field: str) -> str:
    """A short ASCII word (letters, digits, ``-``; 1-32 of them), as a hardware class or a
    precision is named on the wire and in the registry."""
    if (
        not isinstance(text, str)
        or not 0 < len(text) <= 32
        or not text.isascii()
        or not text.replace("-", "").isalnum()
    ):
        raise ProtocolError(f"{what}: expected a short name such as cpu or cuda-sm86", field=field)
    return text
