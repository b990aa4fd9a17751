"""Where a client (or a node choosing its span) learns which nodes exist.

For now the list comes from the command line (``StaticDirectory``); a registry-backed
directory reading the chain plugs in behind the same interface.
"""

from __future__ import annotations

from collections.abc import Iterable

from sharedllm.protocol.session_msgs import parse_url


class NodeDirectory:
    """Lists the base URLs of nodes that may serve a route."""

    async def endpoints(self) -> list[str]:
        raise NotImplementedError


class StaticDirectory(NodeDirectory):
    """A fixed list of endpoints, e.g. from ``--nodes`` or ``--peer``."""

    def __init__(self, endpoints: Iterable[str]) -> None:
        self._endpoints = list(dict.fromkeys(parse_url(u, "endpoint") for u in endpoints))

    async def endpoints(self) -> list[str]:
        return list(self._endpoints)
