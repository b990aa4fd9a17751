"""Where a client (or a node choosing its span) learns which nodes exist, and the keys their
links must be pinned to.

The list comes from the command line (``StaticDirectory``) or from the registry
(``RegistryDirectory``), behind the same interface.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sharedllm.protocol.session_msgs import parse_pinned_url


class NodeDirectory:
    """Lists the base URLs of nodes that may serve a route."""

    # True when every node's key is known (the registry's): an https node whose key is not
    # known is then refused, never trusted on first use.
    knows_keys = False

    async def endpoints(self) -> list[str]:
        raise NotImplementedError

    async def keys(self) -> Mapping[str, frozenset[bytes]]:
        """The ed25519 keys one of which each endpoint's https link must be pinned to,
        where known."""
        return {}


class StaticDirectory(NodeDirectory):
    """A fixed list of endpoints, e.g. from ``--nodes`` or ``--peer``; an endpoint may name
    its node's key after a ``#`` (``https://host:port#0x…``)."""

    def __init__(self, endpoints: Iterable[str]) -> None:
        pinned = [parse_pinned_url(u, "endpoint") for u in endpoints]
        self._endpoints = list(dict.fromkeys(url for url, _ in pinned))
        self._keys = {
            url: frozenset({bytes.fromhex(key[2:])}) for url, key in pinned if key is not None
        }

    async def endpoints(self) -> list[str]:
        return list(self._endpoints)

    async def keys(self) -> Mapping[str, frozenset[bytes]]:
        return dict(self._keys)
