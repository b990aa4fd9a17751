"""Helpers for chain tests: a model id, three spans with prices, and a job builder."""

from __future__ import annotations

import time
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount

from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.connection import Chain
from sharedllm.chain.devnet import Devnet
from sharedllm.protocol.job import Job

MODEL_ID = "0x" + "5e" * 32
SPANS = ((0, 10), (10, 20), (20, 30))
PRICES = (10**12, 2 * 10**12, 3 * 10**12)  # wei per token per layer
CLIENT_DEPOSIT = 1_000 * WEI_PER_SHARE


@dataclass
class Network:
    devnet: Devnet
    chain: Chain
    nodes: list[LocalAccount]
    client: LocalAccount

    def job(self, **changes: object) -> Job:
        body = {
            "modelId": MODEL_ID,
            "route": [n.address for n in self.nodes],
            "spanStarts": [s for s, _ in SPANS],
            "spanEnds": [e for _, e in SPANS],
            "maxTokens": 32,
            "maxPricePerToken": max(PRICES),
            "nonce": int(time.time_ns()),
            "deadline": self.chain.w3.eth.get_block("latest")["timestamp"] + 600,
            "client": self.client.address,
        }
        body.update(changes)
        return Job.from_json(body)
