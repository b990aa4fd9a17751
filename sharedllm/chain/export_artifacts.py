"""Copy ABI and bytecode from Hardhat's build output into the package's artifacts folder.

Run after ``npx hardhat build``: ``python -m sharedllm.chain.export_artifacts``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sharedllm.chain.artifacts import CONTRACT_NAMES, PACKAGE_DIR

REPO_ROOT = Path(__file__).resolve().parents[2]


def exported(hardhat_artifacts: Path, name: str) -> dict[str, Any]:
    """The package's form of one contract, built from Hardhat's artifact JSON."""
    source = hardhat_artifacts / "contracts" / f"{name}.sol" / f"{name}.json"
    if not source.is_file():
        raise FileNotFoundError(f"{source} not found; run `npx hardhat build` first")
    built = json.loads(source.read_text())
    return {"contractName": name, "abi": built["abi"], "bytecode": built["bytecode"]}


def export(hardhat_artifacts: Path, target: Path = PACKAGE_DIR) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in CONTRACT_NAMES:
        path = target / f"{name}.json"
        path.write_text(json.dumps(exported(hardhat_artifacts, name), indent=1) + "\n")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--from", dest="source", type=Path, default=REPO_ROOT / "artifacts")
    args = parser.parse_args(argv)
    try:
        for path in export(args.source):
            print(f"wrote {path}")
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
