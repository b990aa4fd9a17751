"""Errors of the inference data path, each with a stable code and HTTP status.

A node answers every refusal with ``{"code": ..., "message": ..., "details": ...}`` and the
status below; the client turns that body back into the same exception class with
``error_from_body`` so a caller can branch on the type or on ``code`` alike.
"""

from __future__ import annotations

from typing import Any

from sharedllm.errors import (
    ModelError,
    PeerError,
    ProtocolError,
    RouteError,
    SessionError,
    SharedLLMError,
)


class FrameError(ProtocolError):
    """A tensor frame does not parse or does not fit (codes: BAD_FRAME, BAD_DTYPE, BAD_SHAPE,
    BAD_LENGTH, NON_FINITE)."""

    code = "BAD_FRAME"


class BodyTooLarge(ProtocolError):
    code = "BODY_TOO_LARGE"
    http_status = 413


class BodySlow(ProtocolError):
    code = "BODY_TIMEOUT"
    http_status = 408


class WrongModel(ProtocolError):
    code = "WRONG_MODEL"


class SpanNotServed(ProtocolError):
    code = "SPAN_NOT_SERVED"


class SessionForbidden(SessionError):
    """A request that only the session's client may make came without its hop's key."""

    code = "SESSION_FORBIDDEN"
    http_status = 403


class SessionUnknown(SessionError):
    """No open session with that id: never opened, closed, or reaped when idle."""

    code = "SESSION_UNKNOWN"
    http_status = 404


class StepOutOfOrder(SessionError):
    code = "STEP_OUT_OF_ORDER"


class SessionLimit(SessionError):
    """The node is at its cap of sessions or cache memory; try another node."""

    code = "SESSION_LIMIT"
    http_status = 429


class AdmissionRefused(SessionError):
    code = "ADMISSION_REFUSED"
    http_status = 403


_BY_CODE: dict[str, type[SharedLLMError]] = {
    cls.code: cls
    for cls in (
        FrameError,
        BodyTooLarge,
        BodySlow,
        WrongModel,
        SpanNotServed,
        SessionUnknown,
        SessionForbidden,
        StepOutOfOrder,
        SessionLimit,
        AdmissionRefused,
        PeerError,
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
