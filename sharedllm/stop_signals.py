"""How a long-running program learns it should stop."""

from __future__ import annotations

import asyncio
import signal


def stop_event() -> asyncio.Event:
    """An event that SIGINT or SIGTERM sets, on the running loop.

    Call it before printing the "ready" line: whoever waits for that line may stop the
    program at once, and the stop must then be a clean one, not the signal's default death.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
