"""Command-line commands of this part."""

from __future__ import annotations

import argparse


def register_client(sub: argparse._SubParsersAction) -> None:
    """Add this part's commands."""


def register_node(sub: argparse._SubParsersAction) -> None:
    """Add this part's commands."""
