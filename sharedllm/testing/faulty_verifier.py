"""A verifier with a test's crash point in it, as a real process:

    python -m sharedllm.testing.faulty_verifier --crash POINT run ARGS...

It exits with status 9 at that point: in the middle of a check once the transcripts arrived
(``mid_check``), right after its dispute is mined and before its ledger records it
(``after_challenge``), or as a juror with its vote committed and not yet revealed
(``before_reveal``), to prove that a restarted verifier neither loses the job, nor disputes
twice, nor misses its reveal.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from sharedllm.cli import verifier_main

CRASH_STATUS = 9
POINTS = ("mid_check", "after_challenge", "before_reveal")


def faulty_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="faulty_verifier")
    parser.add_argument("--crash", choices=POINTS, required=True)
    ours, verifier_argv = parser.parse_known_args(argv)

    def fault(point: str) -> None:
        if point == ours.crash:
            print(f"faulty_verifier: exiting at {point}", file=sys.stderr, flush=True)
            os._exit(CRASH_STATUS)

    return verifier_main(verifier_argv, fault)


if __name__ == "__main__":
    sys.exit(faulty_main(sys.argv[1:]))
