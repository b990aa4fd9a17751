"""Errors of the inference data path on the wire (the classes are in ``sharedllm.errors``).

A node answers every refusal with ``{"code": ..., "message": ..., "details": ...}`` and the
status below; the client turns that body back into the same exception class with
``error_from_body`` so a caller can branch on the type or on ``code`` alike.
"""

from __future__ import annotations

from typing import Any

from sharedllm.errors import (
    AdmissionRefused,
    BodySlow,
    BodyTooLarge,
    FrameError,
    LinkUntrusted,
    ModelError,
    PeerError,
    ProtocolError,
    RouteError,
    SessionForbidden,
    SessionLimit,
    SessionReclaimed,
    SessionUnknown,
    SharedLLMError,
    SpanNotServed,
    StepOutOfOrder,
    WrongModel,
)

_BY_CODE: dict[str, type[SharedLLMError]] = {
    cls.code: cls
    for cls in (
        FrameError,
        BodyTooLarge,
        BodySlow,
        WrongModel,
        SpanNotServed,
        SessionUnknown,
        SessionReclaimed,
        SessionForbidden,
        StepOutOfOrder,
        SessionLimit,
        AdmissionRefused,
        PeerError,
        LinkUntrusted,
        RouteError,
        ModelError,
    )
}
for _frame_code in ("BAD_DTYPE", "BAD_SHAPE", "BAD_LENGTH", "NON_FINITE"):
    _BY_CODE[_frame_code] = FrameError


def error_from_body(status: int, body: Any) -> SharedLLMError:
    """Rebuild a peer's error from its JSON body; anything unparseable becomes a PeerError."""
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        code = body["code"]
        message = str(body.get("message", ""))
        raw = body.get("details")
        details: dict[str, Any] = raw if isinstance(raw, dict) else {}
        cls = _BY_CODE.get(code)
        if cls is None:
            cls = PeerError if status >= 500 else ProtocolError
        err = cls(message, code=code, **details)
        err.http_status = status
        return err
    return PeerError(f"peer answered HTTP {status} without an error body", status=status)
