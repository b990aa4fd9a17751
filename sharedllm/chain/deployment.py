"""What a deployment is (addresses, market parameters) and its JSON file.

File shape: ``{"chainId", "rpcUrl"?, "addresses": {"ShareToken", "NodeRegistry",
"JobMarket", "DisputeCourt", "BatchSettlement"}, "params": {...MarketParams,
...CourtParams, "demandBond", "batchResponseWindow", "minStake", "unbondingDelay"},
"deployBlock"}``. Amounts in ``params`` are integers in wei; durations are
seconds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from sharedllm import paths
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.errors import ConfigError, ProtocolError
from sharedllm.protocol.types import Address, parse_address, parse_uint


@dataclass(frozen=True)
class MarketParams:
    """Every parameter of a deployment: the JobMarket's ``MarketParams``, the DisputeCourt's
    ``CourtParams``, the BatchSettlement's ``BatchParams`` and the registry's constructor
    arguments. The defaults are a production
    network's (hours, not seconds); the devnet has its own short ones."""

    challenge_window: int = 4 * 3600
    withdrawal_delay: int = 3 * 86400
    max_job_ttl: int = 3600
    slash_amount: int = 50 * WEI_PER_SHARE
    bounty_bps: int = 2000
    reward_per_token: int = 10**12
    min_verifier_stake: int = 100 * WEI_PER_SHARE
    verifier_unbonding_delay: int = 7 * 86400
    min_bond: int = 20 * WEI_PER_SHARE
    jury_size: int = 5
    response_window: int = 2 * 3600
    commit_window: int = 6 * 3600
    reveal_window: int = 3 * 3600
    juror_penalty: int = 10 * WEI_PER_SHARE
    juror_share_bps: int = 5000
    demand_bond: int = 5 * WEI_PER_SHARE
    batch_response_window: int = 2 * 3600
    min_stake: int = 100 * WEI_PER_SHARE
    unbonding_delay: int = 7 * 86400

    def market_tuple(self) -> tuple[int, ...]:
        """In the field order of the JobMarket's struct."""
        return (
            self.challenge_window,
            self.withdrawal_delay,
            self.max_job_ttl,
            self.slash_amount,
            self.bounty_bps,
            self.reward_per_token,
        )

    def court_tuple(self) -> tuple[int, ...]:
        """In the field order of the DisputeCourt's struct."""
        return (
            self.min_verifier_stake,
            self.verifier_unbonding_delay,
            self.min_bond,
            self.jury_size,
            self.response_window,
            self.commit_window,
            self.reveal_window,
            self.juror_penalty,
            self.juror_share_bps,
        )

    def batch_tuple(self) -> tuple[int, ...]:
        """In the field order of the BatchSettlement's struct."""
        return (self.demand_bond, self.batch_response_window)

    @property
    def longest_dispute(self) -> int:
        """Seconds from a commitment to the end of a dispute that needed its redraw and of
        the challenge window its rejection opens again."""
        return 2 * self.challenge_window + 2 * (self.commit_window + self.reveal_window)

    def to_json(self) -> dict[str, int]:
        return {_camel(k): v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> MarketParams:
        values = {}
        for f in fields(cls):
            key = _camel(f.name)
            if key in body:
                values[f.name] = parse_uint(body[key], f"params.{key}")
        return cls(**values)


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    token: Address
    registry: Address
    market: Address
    court: Address
    batches: Address
    params: MarketParams = field(default_factory=MarketParams)
    deploy_block: int = 0
    rpc_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "chainId": self.chain_id,
            "addresses": {
                "ShareToken": self.token,
                "NodeRegistry": self.registry,
                "JobMarket": self.market,
                "DisputeCourt": self.court,
                "BatchSettlement": self.batches,
            },
            "params": self.params.to_json(),
            "deployBlock": self.deploy_block,
        }
        if self.rpc_url:
            body["rpcUrl"] = self.rpc_url
        return body

    @classmethod
    def from_json(cls, body: Any) -> Deployment:
        try:
            addresses = body["addresses"]
            return cls(
                chain_id=parse_uint(body["chainId"], "chainId"),
                token=parse_address(addresses["ShareToken"], "addresses.ShareToken"),
                registry=parse_address(addresses["NodeRegistry"], "addresses.NodeRegistry"),
                market=parse_address(addresses["JobMarket"], "addresses.JobMarket"),
                court=parse_address(addresses["DisputeCourt"], "addresses.DisputeCourt"),
                batches=parse_address(addresses["BatchSettlement"], "addresses.BatchSettlement"),
                params=MarketParams.from_json(body.get("params", {})),
                deploy_block=parse_uint(body.get("deployBlock", 0), "deployBlock"),
                rpc_url=body.get("rpcUrl"),
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"deployment file: missing or bad entry {exc}") from None
        except ProtocolError as exc:
            raise ConfigError(f"deployment file: {exc.message}") from None

    def save(self, path: Path | None = None) -> Path:
        path = path or paths.deployment_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: Path | None = None) -> Deployment:
        path = path or paths.deployment_file()
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise ConfigError(
                f"no deployment file at {path}; start `sharedllm devnet` or pass --deployment",
                field="deployment",
            ) from None
        try:
            return cls.from_json(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"deployment file {path} is not JSON: {exc}") from None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)
