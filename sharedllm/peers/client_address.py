"""Which remote addresses count as one client, for the limits a node keeps per client.

An IPv4 address is one client. An IPv6 host usually holds a whole /64 (addresses within it
are free to pick, by design), so a limit per IPv6 address would give one machine billions of
shares: a node counts the /64 as one client, as mail and web servers commonly do. An IPv4
address written as IPv6 (``::ffff:a.b.c.d``) is that IPv4 address.
"""

from __future__ import annotations

import ipaddress


def client_of(host: str) -> str:
    """The client a connection from ``host`` (a peer's address, as the socket gives it)
    counts as; something that is not an IP address counts as itself."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
