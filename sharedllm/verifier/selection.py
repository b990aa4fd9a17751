"""Which committed jobs a verifier checks: a coin flip that nobody could know in advance.

The coin is ``keccak(blockhash(b + 1) || job id || verifier address)`` read as a 256-bit
number, compared against ``p * 2**256``, where ``b`` is the block holding the job's
commitment. The hash of block ``b + 1`` did not exist when the node served the job (nor
when it sent the commitment), so a node cannot tell which of its jobs will be checked and
cheat only on the others. Mixing in the verifier's address gives every verifier its own
sample, so that several verifiers together cover more jobs than one.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from eth_utils import keccak

from sharedllm.errors import ConfigError

_SPACE = 1 << 256


@dataclass(frozen=True)
class Draw:
    """One job's draw: the 256-bit value and whether it fell under the threshold."""

    value: int
    selected: bool

    @property
    def hex(self) -> str:
        return "0x" + self.value.to_bytes(32, "big").hex()


class SelectionPolicy:
    """Select a job with probability ``probability``; one class, so tests can swap it."""

    def __init__(self, probability: float) -> None:
        if not isinstance(probability, (int, float)) or not 0 <= probability <= 1:
            raise ConfigError("--probability: must be a number in [0, 1]", field="probability")
        self.probability = float(probability)
        # Exact, so that p = 1 selects every job and p = 0 none, whatever the float rounding.
        self.threshold = int(Fraction(self.probability) * _SPACE)

    def draw(self, block_hash: bytes, job_id: str, verifier: str) -> Draw:
        value = random_value(block_hash, job_id, verifier)
        return Draw(value, value < self.threshold)


def random_value(block_hash: bytes, job_id: str, verifier: str) -> int:
    """The 256-bit value behind a draw; the inputs are fixed-width so they cannot collide."""
    if len(block_hash) != 32:
        raise ValueError("block hash must be 32 bytes")
    job = bytes.fromhex(job_id.removeprefix("0x"))
    who = bytes.fromhex(verifier.removeprefix("0x"))
    if len(job) != 32 or len(who) != 20:
        raise ValueError("job id must be 32 bytes and the verifier's address 20")
    return int.from_bytes(keccak(block_hash + job + who), "big")


def parse_probability(text: str) -> float:
    """``--probability`` as given on the command line."""
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"--probability: {text!r} is not a number", field="probability") from None
    SelectionPolicy(value)  # the range check, in one place
    return value
