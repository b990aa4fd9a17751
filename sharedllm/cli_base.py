"""What the three programs share: one parser shape, and errors shown as one line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from sharedllm import __version__
from sharedllm.errors import SharedLLMError

Register = Callable[[argparse._SubParsersAction], None]


def build(prog: str, description: str, registers: Sequence[Register]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in registers:
        register(sub)
    return parser


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what a node host is handed
    try:
        return int(args.func(args) or 0)
    except SharedLLMError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"error": exc.to_json()}), file=sys.stderr)
        else:
            print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
