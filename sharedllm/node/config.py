"""A node's settings, resolved once from the command line."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sharedllm.node.batching import DEFAULT_MAX_POSITIONS, DEFAULT_MAX_ROWS, DEFAULT_WAIT_MS
from sharedllm.peers.connection_cap import DEFAULT_PER_PEER
from sharedllm.peers.link_tls import LinkTrust

_log = logging.getLogger("sharedllm.node")


@dataclass(frozen=True)
class NodeConfig:
    host: str = "127.0.0.1"
    port: int = 0
    public_url: str | None = None  # what peers should call; defaults to https://host:port
    max_sessions: int = 16
    # Free sessions one client address may hold at once (None: half the cap, at least 2).
    # A paid session is held by its signed job's escrow reservation instead.
    max_sessions_per_client: int | None = None
    max_connections_per_peer: int = DEFAULT_PER_PEER  # open connections per remote address
    unstepped_timeout_s: float = 15.0  # an open session that never steps is dropped after this
    # A full free node may close a session that has not stepped for this long, of a client
    # above its fair share, for a client below it (node/fair_share.py).
    reclaim_idle_s: float = 10.0
    cache_budget_bytes: int = 512 * 1024 * 1024  # KV caches plus per-step history
    max_batch: int = DEFAULT_MAX_ROWS  # one-token steps of concurrent sessions run together
    batch_positions: int = DEFAULT_MAX_POSITIONS  # cache positions one batch may gather
    batch_wait_ms: float = DEFAULT_WAIT_MS  # longest a step waits for others to join it
    default_max_length: int = 2048
    idle_timeout_s: float = 120.0  # a session with no step for this long is closed
    session_ttl_s: float = 3600.0  # no session lives longer than this
    step_timeout_s: float = 30.0  # the most a step's push may wait for the rest of the route
    link_delay_ms: float = 0.0  # test/bench only: one-way delay on every outbound frame
    price: int = 0  # SHARE wei per position per layer (prompt and answer tokens alike)
    json_output: bool = False  # the ready line as one JSON object (`run --json`)
    device: str = "cpu"  # where the span's weights and caches live (model/device.py)
    public_key: str | None = None
    address: str | None = None  # the staking account; set when serving paid jobs
    client_max_size: int = 64 * 1024 * 1024  # the largest request body aiohttp will read
    peers: tuple[str, ...] = field(default_factory=tuple)
    # Look at the network's coverage this often and move to thinner layers when it would
    # clearly gain (node/rebalancer.py); None: the span is pinned.
    rebalance_interval_s: float | None = None
    move_drain_s: float = 600.0  # the longest a move waits for the old span's sessions
    peer_keys: tuple[tuple[str, str], ...] = ()  # (url, 0x key) named as --peer URL#KEY

    def peer_trust(self) -> LinkTrust:
        """The node's trust in links: the keys --peer named; other https peers (shard
        sources, whose shards are hash-checked) on first use, said in the log; a route's
        next hop always by the key the client named for it (parse_open requires one)."""
        trust = LinkTrust(trust_on_first_use=True, report=_log.warning)
        for url, key in self.peer_keys:
            trust.expect(url, bytes.fromhex(key[2:]))
        return trust

    @property
    def per_client_limit(self) -> int:
        if self.max_sessions_per_client is not None:
            return self.max_sessions_per_client
        return max(2, self.max_sessions // 2)

    @property
    def retry_after_s(self) -> int:
        """What a full node tells a refused client to wait: about when a slot may free up."""
        return max(1, int(min(self.idle_timeout_s, self.unstepped_timeout_s, 30.0)))

    @property
    def link_delay_s(self) -> float:
        return self.link_delay_ms / 1000.0
