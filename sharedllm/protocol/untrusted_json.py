"""JSON from a peer we do not trust, parsed within limits that are checked before parsing.

Python's ``json`` recurses once per nested array or object, in C, up to the interpreter's
recursion limit; eth-account's dependency py_ecc raises that limit to 100,000 at import, so
``b"[" * 99000`` overflows the C stack and kills the process (signal 11) before any
exception can be caught. Every body, frame header and answer that crosses the wire is parsed
here instead: the size first, then the nesting depth by a linear scan outside strings, then
the parse itself with integers and constants bounded. Each refusal is a ``ValueError`` whose
message names the limit, so callers keep their own error codes.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

MAX_DEPTH = 32
MAX_INT_DIGITS = 80  # a uint256 has 78 decimal digits
DEFAULT_MAX_BYTES = 1 << 20

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[list(b"[{")] = 1
_OPEN[list(b"]}")] = -1


class JsonLimitError(ValueError):
    """JSON that breaks a limit (size, depth, number size) or does not parse."""


def nesting_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects, counting brackets outside strings only."""
    brackets = _STRING.sub(b'""', raw).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    return int(np.cumsum(_OPEN[np.frombuffer(brackets, dtype=np.uint8)], dtype=np.int64).max())


def loads(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``raw`` (UTF-8 JSON) or raise ``JsonLimitError`` naming what is wrong."""
    if len(raw) > max_bytes:
        raise JsonLimitError(f"JSON of {len(raw)} bytes is over the limit of {max_bytes}")
    depth = nesting_depth(raw)
    if depth > max_depth:
        raise JsonLimitError(f"JSON nested {depth} deep is over the limit of {max_depth}")
    try:
        text = raw.decode("utf-8")
        return json.loads(text, parse_constant=_refuse_constant, parse_int=_bounded_int)
    except JsonLimitError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise JsonLimitError(f"not JSON: {exc}") from None


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise JsonLimitError(f"an integer of {len(text)} digits is over {MAX_INT_DIGITS}")
    return int(text)


def _refuse_constant(name: str) -> Any:
    raise JsonLimitError(f"{name} is not allowed in JSON from a peer")
