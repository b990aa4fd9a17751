"""Chain times in the words a person reads: "ready in 14 min 59 s", never a bare timestamp."""

from __future__ import annotations

import time


def format_duration(seconds: int) -> str:
    """``3 h 2 min``, ``14 min 59 s``, ``8 s``: the two largest units that are not zero."""
    seconds = max(0, int(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
    return " ".join(parts[:2])


def ready_phrase(ready_at: int, now: int) -> str:
    """``ready in 14 min 59 s (2026-12-01 21:40 UTC)`` or ``ready now``, by the chain's clock."""
    if ready_at <= now:
        return "ready now"
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ready_at))
    return f"ready in {format_duration(ready_at - now)} ({when})"
