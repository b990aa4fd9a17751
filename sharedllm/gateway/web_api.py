"""The web page's API (wallet-signed jobs)."""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    """Add the web page's routes to the gateway's application."""
