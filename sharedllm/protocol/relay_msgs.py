"""The relay's wire: one JSON object per line, parsed strictly, before any byte is relayed.

A node behind NAT keeps one *control* connection open to a relay (plain TCP; nothing on it
is secret) and proves it holds its node key:

    node  → {"register": 1, "key": "0x<ed25519 pubkey>", "listen_port": P}
    relay → {"nonce": "<32 hex>"}
    node  → {"signature": "<128 hex>"}            ed25519 over DOMAIN | nonce | key
    relay → {"url": "https://relay:port", "direct": true|false}

``url`` is the node's public address on the relay, the same for the same key on every
connection; ``direct`` says whether the relay could open a connection to the node's own
address (``listen_port`` at the address the control connection came from). Then, for each
connection a client opens to ``url``:

    relay → {"connect": "<32 hex token>", "client": "<the client's IP>"}
    node opens a new connection to the relay and sends {"accept": "<token>"}; from then on
    that connection carries the client's bytes both ways, unchanged: the client's TLS, which
    ends at the node, so the relay sees only ciphertext.

The node sends {"ping": n} every ``PING_EVERY_S`` and the relay answers {"pong": n}: the NAT
mapping stays open, and either side takes ``SILENT_S`` of silence for a dead peer. A line is
at most ``MAX_LINE`` bytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from sharedllm.errors import ProtocolError
from sharedllm.protocol import untrusted_json

DOMAIN = b"sharedllm relay registration v1\x00"
MAX_LINE = 4096
PING_EVERY_S = 15.0  # how often the node pings its relay
SILENT_S = 3 * PING_EVERY_S  # a control connection silent this long is dead
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_KEY = re.compile(r"^0x[0-9a-fA-F]{64}$")
_SIG = re.compile(r"^[0-9a-f]{128}$")


def line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def parse_line(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_LINE or not raw.endswith(b"\n"):
        raise ProtocolError(f"a relay line is at most {MAX_LINE} bytes, ended by a newline")
    try:
        message = untrusted_json.loads(raw, max_bytes=MAX_LINE, max_depth=2)
    except ValueError as exc:
        raise ProtocolError(f"a relay line that is not JSON: {exc}") from None
    if not isinstance(message, dict) or len(message) not in (1, 2, 3):
        raise ProtocolError("a relay line is a JSON object of one to three fields")
    return message


@dataclass(frozen=True)
class Register:
    key: bytes  # the node's ed25519 public key
    listen_port: int | None


def parse_register(message: dict[str, Any]) -> Register:
    if message.get("register") != 1 or not set(message) <= {"register", "key", "listen_port"}:
        raise ProtocolError('expected {"register": 1, "key": ..., "listen_port"?: ...}')
    key = message.get("key")
    if not isinstance(key, str) or not _KEY.match(key):
        raise ProtocolError("register.key: expected 0x and 64 hex digits", field="key")
    port = message.get("listen_port")
    if port is not None and (
        not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535
    ):
        raise ProtocolError("register.listen_port: expected a port number", field="listen_port")
    return Register(bytes.fromhex(key[2:]), port)


def registration(key: SigningKey, listen_port: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"register": 1, "key": "0x" + bytes(key.verify_key).hex()}
    return body | ({"listen_port": listen_port} if listen_port is not None else {})


def sign_nonce(key: SigningKey, nonce: str) -> dict[str, Any]:
    message = DOMAIN + bytes.fromhex(nonce) + bytes(key.verify_key)
    return {"signature": key.sign(message).signature.hex()}


def check_signature(register: Register, nonce: str, message: dict[str, Any]) -> None:
    signature = message.get("signature")
    if set(message) != {"signature"} or not isinstance(signature, str) or not _SIG.match(signature):
        raise ProtocolError('expected {"signature": "<128 hex>"}', field="signature")
    signed = DOMAIN + bytes.fromhex(nonce) + register.key
    try:
        VerifyKey(register.key).verify(signed, bytes.fromhex(signature))
    except (BadSignatureError, ValueError):
        raise ProtocolError(
            "the signature is not the registering key's", code="SIGNATURE_MISMATCH"
        ) from None


def token_of(message: dict[str, Any], field: str) -> str:
    """The 32-hex token of a ``connect`` or ``accept`` line, or of a ``nonce``."""
    value = message.get(field)
    if not isinstance(value, str) or not _HEX32.match(value):
        raise ProtocolError(f"{field}: expected 32 hex digits", field=field)
    return value


@dataclass(frozen=True)
class Assigned:
    url: str
    direct: bool


def parse_assigned(message: dict[str, Any]) -> Assigned:
    url, direct = message.get("url"), message.get("direct")
    if (
        set(message) != {"url", "direct"}
        or not isinstance(url, str)
        or not isinstance(direct, bool)
    ):
        raise ProtocolError('expected {"url": ..., "direct": true|false}')
    if not url.startswith("https://") or len(url) > 256:
        raise ProtocolError("url: expected an https URL", field="url")
    return Assigned(url, direct)


def refusal(message: dict[str, Any]) -> tuple[str, str] | None:
    """The (code, message) of an ``{"error": ..., "code": ...}`` line, else None."""
    if "error" not in message:
        return None
    code = message.get("code")
    return (code if isinstance(code, str) else "RELAY_REFUSED")[:64], str(message["error"])[:500]
