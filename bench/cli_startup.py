"""How long a person waits for the command line: `--help` of each program, and a TAB's
completion, against a bare interpreter and one that imports click, measured in the same run.

Each row runs the command as a fresh process ``--runs`` times (interleaved with the other
rows, so that a busy moment of the machine spreads over all of them) and shows the median
and the fastest run; "over python" is the median minus the bare interpreter's. The target
is `sharedllm --help` under 0.5 s.

    .venv/bin/python bench/cli_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
TARGET_S = 0.5


def rows() -> list[tuple[str, list[str], dict[str, str]]]:
    complete = {"_SHAREDLLM_COMPLETE": "bash_complete", "COMP_WORDS": "sharedllm dep",
                "COMP_CWORD": "1"}  # fmt: skip
    return [
        ("python -c pass (baseline)", [sys.executable, "-c", "pass"], {}),
        ("python -c 'import click' (baseline)", [sys.executable, "-c", "import click"], {}),
        ("sharedllm --help", [str(BIN / "sharedllm"), "--help"], {}),
        ("sharedllm generate --help", [str(BIN / "sharedllm"), "generate", "--help"], {}),
        ("sharedllm-node run --help", [str(BIN / "sharedllm-node"), "run", "--help"], {}),
        ("sharedllm-verifier --help", [str(BIN / "sharedllm-verifier"), "--help"], {}),
        ("TAB: sharedllm dep", [str(BIN / "sharedllm")], complete),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    table = rows()
    times: dict[str, list[float]] = {name: [] for name, _, _ in table}
    for _ in range(runs):
        for name, argv, env in table:
            began = time.perf_counter()
            subprocess.run(argv, env={**os.environ, **env}, capture_output=True, check=True)
            times[name].append(time.perf_counter() - began)
    base = statistics.median(times[table[0][0]])
    print(f"{'command':<38} {'median s':>9} {'fastest s':>10} {'over python s':>14}")
    for name, _, _ in table:
        median = statistics.median(times[name])
        print(f"{name:<38} {median:>9.3f} {min(times[name]):>10.3f} {median - base:>14.3f}")
    help_s = statistics.median(times["sharedllm --help"])
    verdict = "meets" if help_s < TARGET_S else "misses"
    print(f"\nsharedllm --help: {help_s:.3f} s median, {verdict} the {TARGET_S} s target")


if __name__ == "__main__":
    main()
