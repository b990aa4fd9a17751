"""A node's settings, resolved once from the command line."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class NodeConfig:
    host: str = "127.0.0.1"
    port: int = 0
    public_url: str | None = None  # what peers should call; defaults to http://host:port
    max_sessions: int = 16
    cache_budget_bytes: int = 512 * 1024 * 1024  # KV caches plus per-step history
    default_max_length: int = 2048
    idle_timeout_s: float = 120.0  # a session with no request for this long is closed
    session_ttl_s: float = 3600.0  # no session lives longer than this
    step_timeout_s: float = 30.0  # one hop's push of one step, including its compute
    link_delay_ms: float = 0.0  # test/bench only: one-way delay on every outbound frame
    price: int = 0  # SHARE wei per position per layer (prompt and answer tokens alike)
    public_key: str | None = None
    address: str | None = None  # the staking account; set when serving paid jobs
    client_max_size: int = 64 * 1024 * 1024  # the largest request body aiohttp will read
    peers: tuple[str, ...] = field(default_factory=tuple)

    @property
    def link_delay_s(self) -> float:
        return self.link_delay_ms / 1000.0
