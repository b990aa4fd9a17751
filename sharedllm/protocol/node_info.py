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

    @property
    def layers(self) -> int:
        return self.end - self.start

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["span"] = [body.pop("start"), body.pop("end")]
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

    span = get("span", list)
    if len(span) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) for x in span):
        raise ProtocolError("info.span: expected [start, end]", field="span")
    start, end = span
    if not 0 <= start < end:
        raise ProtocolError("info.span: expected 0 <= start < end", field="span")
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
    if any(v < 0 for v in counts.values()):
        raise ProtocolError("info: counts must not be negative", field="info")
    return NodeInfo(
        version=get("version", str),
        model_id=parse_model_id(body.get("model_id"), "model_id"),
        start=start,
        end=end,
        ms_per_token=ms,
        public_key=key,
        address=address,
        **counts,
    )
