"""The JSON messages of an inference session, parsed strictly at the node's edge.

A session is opened on every hop of a route with the same client-chosen ``session_id``; the
open request carries the whole route so each hop knows where to push its output (the next
hop) and whether it is the last one (then it keeps the output for the client to collect).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sharedllm.errors import ProtocolError
from sharedllm.protocol.amendment import Amendment, parse_amendments
from sharedllm.protocol.types import ModelId, parse_model_id

_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
MAX_HOPS = 64
# The most positions one step may carry. A longer prompt goes as several steps: a node's
# worker is then never held by one client for more than a short step (about 1 s for ten
# layers of the default model on a laptop core), and step timeouts need not grow with it.
MAX_STEP_POSITIONS = 512


@dataclass(frozen=True)
class Hop:
    url: str
    start: int
    end: int
    # The node's ed25519 key (0x + 64 hex) that an https link to ``url`` must be pinned to
    # (peers/link_tls.py): what the client trusts, handed to the hop that pushes to it.
    key: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"url": self.url, "start": self.start, "end": self.end}
        return body | ({"key": self.key} if self.key is not None else {})


@dataclass(frozen=True)
class OpenSession:
    session_id: str
    model_id: ModelId
    route: tuple[Hop, ...]
    hop_index: int
    max_length: int
    job: dict[str, Any] | None = None
    signature: str | None = None
    control: str | None = None  # SHA-256 (hex) of this hop's session key (session_keys.py)
    # A paid job's hop replacements so far (amendment.py): a replacement opens with them.
    amendments: tuple[Amendment, ...] = ()

    @property
    def hop(self) -> Hop:
        return self.route[self.hop_index]

    @property
    def next_url(self) -> str | None:
        i = self.hop_index + 1
        return self.route[i].url if i < len(self.route) else None

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "model_id": self.model_id,
            "route": [h.to_json() for h in self.route],
            "hop_index": self.hop_index,
            "max_length": self.max_length,
            "job": self.job,
            "signature": self.signature,
            "control": self.control,
            **({"amendments": [a.to_json() for a in self.amendments]} if self.amendments else {}),
        }


@dataclass(frozen=True)
class RouteUpdate:
    """Re-points a hop after a failover: the new route and this hop's index in it."""

    route: tuple[Hop, ...]
    hop_index: int

    def to_json(self) -> dict[str, Any]:
        return {"route": [h.to_json() for h in self.route], "hop_index": self.hop_index}


def parse_open(body: Any) -> OpenSession:
    obj = _object(
        body,
        {"session_id", "model_id", "route", "hop_index", "max_length"},
        {"job", "signature", "control", "amendments"},
    )
    route, hop_index = _route_and_index(obj)
    job = obj.get("job")
    if job is not None and not isinstance(job, dict):
        raise ProtocolError("job: expected an object or null", field="job")
    signature = obj.get("signature")
    if signature is not None and not isinstance(signature, str):
        raise ProtocolError("signature: expected a hex string or null", field="signature")
    control = obj.get("control")
    if control is not None and not (isinstance(control, str) and _DIGEST.match(control)):
        raise ProtocolError("control: expected 64 lowercase hex digits or null", field="control")
    amendments = parse_amendments(obj.get("amendments", []), len(route))
    if amendments and job is None:
        raise ProtocolError("amendments: only a paid job has amendments", field="amendments")
    return OpenSession(
        session_id=parse_session_id(obj["session_id"]),
        model_id=parse_model_id(obj["model_id"], "model_id"),
        route=route,
        hop_index=hop_index,
        max_length=_int(obj["max_length"], "max_length", 1, 1 << 20),
        job=job,
        signature=signature,
        control=control,
        amendments=amendments,
    )


def parse_amend(body: Any, hops: int) -> tuple[Amendment, ...]:
    """``POST /sessions/{sid}/amend``: ``{"amendments": [...]}``, the job's whole list so far."""
    obj = _object(body, {"amendments"}, set())
    amendments = parse_amendments(obj["amendments"], hops)
    if not amendments:
        raise ProtocolError("amendments: expected at least one", field="amendments")
    return amendments


def parse_route_update(body: Any) -> RouteUpdate:
    obj = _object(body, {"route", "hop_index"}, set())
    route, hop_index = _route_and_index(obj)
    return RouteUpdate(route, hop_index)


def parse_session_id(value: Any) -> str:
    if not isinstance(value, str) or not _SESSION_ID.match(value):
        raise ProtocolError(
            "session_id: expected 8-64 characters of [A-Za-z0-9_-]", field="session_id"
        )
    return value


def parse_link_key(value: Any, field: str) -> str:
    """An ed25519 public key as the registry writes it: 0x + 64 hex digits, lowercased."""
    if not isinstance(value, str) or not re.fullmatch(r"0x[0-9a-fA-F]{64}", value):
        raise ProtocolError(f"{field}: expected 0x + 64 hex digits (an ed25519 key)", field=field)
    return value.lower()


def parse_pinned_url(value: Any, field: str) -> tuple[str, str | None]:
    """A node's URL as a person writes it, optionally with the key its link must be pinned
    to after a ``#``: ``https://host:port#0x<64 hex>``. Returns (url, key or None)."""
    url = parse_url(value, field)
    base, sep, key = url.partition("#")
    if not sep:
        return url, None
    return base.rstrip("/"), parse_link_key(key if key.startswith("0x") else "0x" + key, field)


def parse_url(value: Any, field: str) -> str:
    if not isinstance(value, str) or len(value) > 2048:
        raise ProtocolError(f"{field}: expected an http(s) URL string", field=field)
    try:
        parts = urlsplit(value)
        valid = parts.scheme in ("http", "https") and parts.hostname and not parts.query
        parts.port  # noqa: B018 -- raises on a port that is not a number in range
    except ValueError:  # urlsplit refuses e.g. "http://[::1" (an unclosed IPv6 bracket)
        valid = False
    if not valid:
        raise ProtocolError(f"{field}: expected an http(s) URL, got {value[:100]!r}", field=field)
    return value.rstrip("/")


def _route_and_index(obj: dict[str, Any]) -> tuple[tuple[Hop, ...], int]:
    raw = obj["route"]
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_HOPS:
        raise ProtocolError(f"route: expected a list of 1..{MAX_HOPS} hops", field="route")
    hops: list[Hop] = []
    for i, item in enumerate(raw):
        h = _object(item, {"url", "start", "end"}, {"key"}, f"route[{i}]")
        start = _int(h["start"], f"route[{i}].start", 0, 65535)
        end = _int(h["end"], f"route[{i}].end", 1, 65535)
        if end <= start:
            raise ProtocolError(f"route[{i}]: end must be > start", field=f"route[{i}]")
        if hops and hops[-1].end != start:
            raise ProtocolError(f"route[{i}]: spans must be contiguous", field=f"route[{i}]")
        key = parse_link_key(h["key"], f"route[{i}].key") if "key" in h else None
        hops.append(Hop(parse_url(h["url"], f"route[{i}].url"), start, end, key))
    if hops[0].start != 0:
        raise ProtocolError("route: the first hop must start at layer 0", field="route")
    index = _int(obj["hop_index"], "hop_index", 0, len(hops) - 1)
    after = index + 1
    if after < len(hops) and hops[after].url.startswith("https://") and hops[after].key is None:
        raise ProtocolError(
            f"route[{after}].key: required, since this hop pushes to it over https",
            field=f"route[{after}].key",
        )
    return tuple(hops), index


def _object(
    value: Any, required: set[str], optional: set[str], field: str = "body"
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(f"{field}: expected a JSON object", field=field)
    missing = required - set(value)
    if missing:
        raise ProtocolError(f"{field}: missing {sorted(missing)}", field=field)
    unknown = set(value) - required - optional
    if unknown:
        raise ProtocolError(f"{field}: unknown fields {sorted(unknown)}", field=field)
    return value


def _int(value: Any, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ProtocolError(f"{field}: expected an integer in [{lo}, {hi}]", field=field)
    return value


def parse_step_meta(meta: dict[str, Any]) -> tuple[int, int]:
    """The (step, start_pos) of a step frame's metadata (its budget: ``step_deadline``)."""
    _object(meta, {"step", "start_pos"}, {"receipts", "budget_ms"}, "meta")
    return _int(meta["step"], "meta.step", 0, 1 << 20), _int(
        meta["start_pos"], "meta.start_pos", 0, 1 << 20
    )


def parse_receipts_meta(meta: dict[str, Any]) -> list[str]:
    """The receipts of earlier hops that travel with a paid step's input (hex strings)."""
    receipts = meta.get("receipts", [])
    if not isinstance(receipts, list) or len(receipts) > MAX_HOPS:
        raise ProtocolError(f"meta.receipts: expected a list of <= {MAX_HOPS}", field="meta")
    if not all(isinstance(r, str) and len(r) <= 1 << 20 for r in receipts):
        raise ProtocolError("meta.receipts: expected hex strings", field="meta.receipts")
    return receipts


def parse_replay_meta(meta: dict[str, Any], total: int) -> list[int]:
    """The per-step token counts of a replay frame; they must add up to its length."""
    _object(meta, {"steps"}, set(), "meta")
    steps = meta["steps"]
    if not isinstance(steps, list) or not steps or len(steps) > 1 << 20:
        raise ProtocolError("meta.steps: expected a non-empty list", field="meta.steps")
    lengths = [_int(s, "meta.steps[]", 1, 1 << 20) for s in steps]
    if sum(lengths) != total:
        raise ProtocolError(
            f"meta.steps add up to {sum(lengths)}, frame holds {total} positions",
            field="meta.steps",
        )
    return lengths
