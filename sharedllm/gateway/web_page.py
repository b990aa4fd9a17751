"""The page itself: ``web/index.html``, its stylesheet, and the script built into ``web/dist``.

The script is bundled from npm packages at setup (``make setup``), never fetched from a CDN,
so a checkout that skipped the build would serve a page with no wallet code; it gets a 500
page that says how to build instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from aiohttp import web

WEB_DIR_ENV = "SHAREDLLM_WEB_DIR"
BUILT_SCRIPT = Path("dist") / "app.js"
ASSETS = {
    "style.css": ("style.css", "text/css"),
    "app.js": (str(BUILT_SCRIPT), "text/javascript"),
    "app.js.map": (str(BUILT_SCRIPT) + ".map", "application/json"),
    "favicon.svg": ("favicon.svg", "image/svg+xml"),
}

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SharedLLM: page not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto">
<h1>The web page is not built</h1>
<p>The gateway found no <code>{script}</code>. The page's script is bundled from npm packages
at setup time; run <code>make setup</code> (or <code>npm run build:web</code>) in the
repository, then reload.</p>
</body></html>
"""


def web_dir() -> Path:
    """``$SHAREDLLM_WEB_DIR``, else ``web/`` next to the package in a checkout."""
    configured = os.environ.get(WEB_DIR_ENV)
    return Path(configured) if configured else Path(__file__).resolve().parents[2] / "web"


def _not_built(root: Path) -> web.Response:
    return web.Response(
        status=500, text=NOT_BUILT.format(script=root / BUILT_SCRIPT), content_type="text/html"
    )


async def index(request: web.Request) -> web.StreamResponse:
    root = web_dir()
    if not (root / BUILT_SCRIPT).is_file() or not (root / "index.html").is_file():
        return _not_built(root)
    return web.FileResponse(root / "index.html", headers={"Cache-Control": "no-cache"})


async def asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound(text=f"no asset {name!r}")
    root = web_dir()
    relative, content_type = ASSETS[name]
    path = root / relative
    if not path.is_file():
        if name.startswith("app.js"):
            return _not_built(root)
        raise web.HTTPNotFound(text=f"no asset {name!r}")
    return web.FileResponse(
        path, headers={"Content-Type": content_type, "Cache-Control": "no-cache"}
    )


def add_page_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/assets/{name}", asset)
