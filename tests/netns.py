"""Hosts on one machine: Linux network namespaces that a test makes and removes itself.

``Hosts`` makes a switch (a namespace holding a bridge), puts each host in a namespace of
its own with one address on the switch, and can put a host behind a NAT router (nftables
masquerade, with no route and no forwarding for connections from outside). Every name
carries this process's id, so runs side by side never meet; everything made is removed on
``close``, also after a failure, and a namespace that outlives a crash is removed by the
next run's ``sweep``. Traffic stays between the namespaces made here: none of them has a
route to the machine's own network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

PUBLIC = "10.77.0"  # the switch's /24
PRIVATE = "192.168.77"  # behind the NAT router


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (iproute2, nftables)"
    probe = f"slprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot make a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


class Hosts:
    def __init__(self) -> None:
        self.tag = f"sl{os.getpid()}"
        self.made: list[str] = []
        self.switch = self._namespace("sw")
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        self._ports = 0

    def _namespace(self, name: str) -> str:
        ns = f"{self.tag}-{name}"
        _ip("netns", "add", ns)
        self.made.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        return ns

    def _plug(self, ns: str, address: str) -> None:
        """A cable from the switch to ``ns``'s eth0, with ``address``/24."""
        self._ports += 1
        port = f"p{self._ports}"
        _ip("-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", "eth0",
            "netns", ns)  # fmt: skip
        _ip("-n", self.switch, "link", "set", port, "master", "br0")
        _ip("-n", self.switch, "link", "set", port, "up")
        _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")

    def host(self, name: str, last_octet: int) -> tuple[str, str]:
        """A host on the switch: its namespace and its address."""
        ns = self._namespace(name)
        address = f"{PUBLIC}.{last_octet}"
        self._plug(ns, address)
        return ns, address

    def behind_nat(self, name: str, router_octet: int) -> tuple[str, str, str]:
        """A host behind a NAT router on the switch: (its namespace, its private address, the
        router's public address). It reaches the switch; nothing there reaches it."""
        router, public = self.host(f"{name}-gw", router_octet)
        ns = self._namespace(name)
        _ip("-n", router, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0",
            "netns", ns)  # fmt: skip
        _ip("-n", router, "addr", "add", f"{PRIVATE}.1/24", "dev", "lan0")
        _ip("-n", router, "link", "set", "lan0", "up")
        _ip("-n", ns, "addr", "add", f"{PRIVATE}.2/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "route", "add", "default", "via", f"{PRIVATE}.1")
        self.run(router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        rules = f"""
table ip nat {{
  chain post {{
    type nat hook postrouting priority srcnat;
    oifname "eth0" ip saddr {PRIVATE}.0/24 masquerade
  }}
}}
table inet filter {{
  chain forward {{
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "lan0" oifname "eth0" accept
  }}
}}
"""
        done = subprocess.run(
            ["ip", "netns", "exec", router, "nft", "-f", "-"], input=rules, text=True,
            capture_output=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"nft in {router}: {done.stderr.strip()}")
        return ns, f"{PRIVATE}.2", public

    def run(self, ns: str, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", ns, *command], capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip

    @staticmethod
    def inside(ns: str, command: Sequence[str]) -> list[str]:
        """``command`` run in namespace ``ns``."""
        return ["ip", "netns", "exec", ns, *command]

    def close(self) -> None:
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.made.clear()


def sweep() -> None:
    """Remove namespaces an earlier run left behind (it was killed before its cleanup)."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in listed.splitlines():
        name = line.split()[0] if line.split() else ""
        pid = name[2:].split("-", 1)[0]
        if name.startswith("sl") and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
