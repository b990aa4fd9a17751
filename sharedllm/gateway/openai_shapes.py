"""OpenAI request bodies, parsed strictly into one typed request.

Every field the gateway acts on is type-checked here, and a bad value is a ``ProtocolError``
naming the field (the API answers it as a 400 with ``param`` set). Fields OpenAI defines
that do not change the answer (``user``, ``metadata``, ``store``, ...) are ignored; fields
that would change it in a way this gateway cannot honour (tools, logprobs, several choices)
are refused rather than silently dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sharedllm.errors import ProtocolError

DEFAULT_MAX_TOKENS = 256
MAX_TOKENS_LIMIT = 4096
MAX_STOP_STRINGS = 4
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_UNSUPPORTED = ("tools", "functions", "tool_choice", "function_call", "logit_bias", "suffix")


@dataclass(frozen=True)
class GenerationRequest:
    """One chat or text completion, as the gateway runs it."""

    model: str
    messages: tuple[dict[str, str], ...] | None  # chat: role and plain-text content
    prompt: str | None  # completions: the raw prompt, no chat template
    max_tokens: int
    temperature: float
    top_p: float
    seed: int | None
    stop: tuple[str, ...]
    stream: bool
    include_usage: bool


def _bad(field: str, message: str) -> ProtocolError:
    return ProtocolError(f"{field}: {message}", field=field)


def _present(body: dict[str, Any], field: str) -> bool:
    return body.get(field) is not None


def _int(body: dict[str, Any], field: str, low: int, high: int) -> int | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad(field, f"expected an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise _bad(field, f"must be between {low} and {high}, got {value}")
    return value


def _number(body: dict[str, Any], field: str, low: float, high: float, default: float) -> float:
    value = body.get(field)
    if value is None:
        return default
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _bad(field, f"expected a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise _bad(field, f"expected a finite number, got {value}")
    if not low <= value <= high:
        raise _bad(field, f"must be between {low} and {high}, got {value}")
    return float(value)


def _bool(body: dict[str, Any], field: str) -> bool:
    value = body.get(field)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _bad(field, f"expected true or false, got {type(value).__name__}")
    return value


def _stop(body: dict[str, Any]) -> tuple[str, ...]:
    value = body.get("stop")
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise _bad("stop", "expected a string or a list of strings")
    if len(stops) > MAX_STOP_STRINGS:
        raise _bad("stop", f"at most {MAX_STOP_STRINGS} stop strings")
    if any(not s for s in stops):
        raise _bad("stop", "stop strings must not be empty")
    return tuple(stops)


def _text(value: str, field: str) -> str:
    """Text that the tokenizer can take: JSON allows a lone surrogate (``"\\ud800"``), which
    no UTF-8 text holds."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(field, "holds a lone surrogate, which is not text") from None
    return value


def _content(value: Any, field: str) -> str:
    """Plain text, or OpenAI's list of content parts when every part is text."""
    if isinstance(value, str):
        return _text(value, field)
    if isinstance(value, list):
        texts = []
        for i, part in enumerate(value):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise _bad(f"{field}[{i}]", "only text content parts are supported")
            if not isinstance(part.get("text"), str):
                raise _bad(f"{field}[{i}].text", "expected a string")
            texts.append(_text(part["text"], f"{field}[{i}].text"))
        return "".join(texts)
    raise _bad(field, "expected a string or a list of text parts")


def _messages(body: dict[str, Any]) -> tuple[dict[str, str], ...]:
    value = body.get("messages")
    if not isinstance(value, list) or not value:
        raise _bad("messages", "expected a non-empty list of messages")
    messages = []
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise _bad(f"messages[{i}]", "expected an object with role and content")
        role = message.get("role")
        if role not in ROLES:
            raise _bad(f"messages[{i}].role", f"expected one of {', '.join(ROLES)}, got {role!r}")
        content = _content(message.get("content"), f"messages[{i}].content")
        messages.append({"role": ROLES[role], "content": content})
    return tuple(messages)


def _prompt(body: dict[str, Any]) -> str:
    value = body.get("prompt")
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        value = value[0]
    if not isinstance(value, str) or not value:
        raise _bad("prompt", "expected a non-empty string (or a list holding one string)")
    return _text(value, "prompt")


def _include_usage(options: dict[str, Any] | None) -> bool:
    value = (options or {}).get("include_usage")
    if value is not None and not isinstance(value, bool):
        raise _bad("stream_options.include_usage", "expected true or false")
    return bool(value)


def parse_request(body: Any, *, chat: bool) -> GenerationRequest:
    """A ``/v1/chat/completions`` (``chat``) or ``/v1/completions`` body."""
    if not isinstance(body, dict):
        raise _bad("body", "expected a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("model", "expected a model id string (see GET /v1/models)")
    for field in _UNSUPPORTED:
        if body.get(field):
            raise _bad(field, "is not supported by this gateway")
    if body.get("logprobs") or body.get("top_logprobs") or body.get("echo"):
        field = next(f for f in ("logprobs", "top_logprobs", "echo") if body.get(f))
        raise _bad(field, "is not supported by this gateway")
    response_format = body.get("response_format")
    if response_format is not None and response_format != {"type": "text"}:
        raise _bad("response_format", "only {'type': 'text'} is supported by this gateway")
    if _present(body, "n") and _int(body, "n", 1, 1_000_000) != 1:
        raise _bad("n", "this gateway returns one choice per request; n must be 1")
    if _present(body, "best_of") and _int(body, "best_of", 1, 1_000_000) != 1:
        raise _bad("best_of", "must be 1")
    limits = (1, MAX_TOKENS_LIMIT)
    max_tokens = _int(body, "max_completion_tokens", *limits) if chat else None
    if max_tokens is None:
        max_tokens = _int(body, "max_tokens", *limits)
    stream = _bool(body, "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise _bad("stream_options", "expected an object")
    if options is not None and not stream:
        raise _bad("stream_options", "is only allowed when stream is true")
    return GenerationRequest(
        model=model,
        messages=_messages(body) if chat else None,
        prompt=None if chat else _prompt(body),
        max_tokens=max_tokens or DEFAULT_MAX_TOKENS,
        # 0 (greedy), as `sharedllm generate`: the same question gets the same answer on
        # every surface unless the caller asks for sampling (docs/GATEWAY.md).
        temperature=_number(body, "temperature", 0.0, 2.0, 0.0),
        top_p=_number(body, "top_p", 0.0, 1.0, 1.0),
        seed=_int(body, "seed", 0, 2**63 - 1),
        stop=_stop(body),
        stream=stream,
        include_usage=_include_usage(options),
    )
