"""A node with a test's fault in it, as a real process:

    python -m sharedllm.testing.faulty_node [--cheat MODE[:RATE]] [--crash-after-submit] \\
        [--overcharge] run ARGS...

``--cheat`` wraps the span runner in a ``CheatingRunner``; ``--crash-after-submit`` exits
the process (status 9) right after a result submission is mined and before the ledger
records it, to prove a restarted node does not submit twice; ``--overcharge`` submits every
job it settles for the job's ``maxTokens`` instead of the positions it served. The node runs
in this process (never through a node host, which would start an honest one).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from sharedllm.node.cli import NodeFaults, main
from sharedllm.testing.cheats import cheating_wrapper

CRASH_STATUS = 9


def _crash(job_id: str) -> None:
    print(f"faulty_node: exiting after submitting {job_id}", file=sys.stderr, flush=True)
    os._exit(CRASH_STATUS)


def faulty_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="faulty_node", add_help=True)
    parser.add_argument("--cheat", help="MODE[:RATE] (see sharedllm.testing.cheats)")
    parser.add_argument("--crash-after-submit", action="store_true")
    parser.add_argument("--overcharge", action="store_true")
    ours, node_argv = parser.parse_known_args(argv)
    faults = NodeFaults(
        wrap_runner=cheating_wrapper(ours.cheat) if ours.cheat else None,
        after_submit=_crash if ours.crash_after_submit else None,
        claim=(lambda _served, job: int(job["maxTokens"])) if ours.overcharge else None,
    )
    if node_argv[:1] == ["run"] and "--no-host" not in node_argv:
        node_argv = [*node_argv, "--no-host"]
    return main(node_argv, faults)


if __name__ == "__main__":
    sys.exit(faulty_main(sys.argv[1:]))
