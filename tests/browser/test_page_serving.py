"""The page's routes without a browser or a chain: build checks and the signature endpoint."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from sharedllm.gateway import web_api
from sharedllm.gateway.state import GATEWAY, GatewayState

JOB_ID = "0x" + "ab" * 32


def _app() -> web.Application:
    app = web.Application()
    # Only the signature and page routes run here; they touch no chain, model or book.
    app[GATEWAY] = GatewayState(None, None, None, None, None, None, "")  # type: ignore[arg-type]
    web_api.add_routes(app)
    return app


async def _request(method: str, path: str, **kwargs: object) -> tuple[int, str, str]:
    async with TestClient(TestServer(_app())) as client:
        response = await client.request(method, path, **kwargs)
        return response.status, response.headers.get("Content-Type", ""), await response.text()


def _call(method: str, path: str, **kwargs: object) -> tuple[int, str, str]:
    return asyncio.run(_request(method, path, **kwargs))


@pytest.fixture
def web_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "web"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>page</title>")
    (root / "style.css").write_text("body {}")
    monkeypatch.setenv("SHAREDLLM_WEB_DIR", str(root))
    return root


def test_an_unbuilt_page_says_to_run_make_setup(web_dir: Path) -> None:
    status, content_type, body = _call("GET", "/")
    assert status == 500
    assert content_type.startswith("text/html")
    assert "make setup" in body
    status, _, body = _call("GET", "/assets/app.js")
    assert status == 500 and "make setup" in body


def test_a_built_page_serves_its_script_and_stylesheet(web_dir: Path) -> None:
    (web_dir / "dist").mkdir()
    (web_dir / "dist" / "app.js").write_text("console.log('built')")
    status, content_type, body = _call("GET", "/")
    assert status == 200 and "<title>page</title>" in body
    status, content_type, body = _call("GET", "/assets/app.js")
    assert (status, content_type, body) == (200, "text/javascript", "console.log('built')")
    assert _call("GET", "/assets/style.css")[:2] == (200, "text/css")
    assert _call("GET", "/assets/secret.txt")[0] == 404


def test_a_signature_nobody_waits_for_is_refused_with_its_code() -> None:
    status, _, body = _call(
        "POST", f"/api/jobs/{JOB_ID}/signature", json={"signature": "0x" + "11" * 65}
    )
    assert status == 409 and '"NOT_WAITING"' in body


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"signature": "0x1234"}, "signature"),
        ({"signature": "0x" + "zz" * 65}, "signature"),
        ({"refused": "yes"}, "refused"),
        ({"signature": "0x" + "11" * 65, "refused": True}, "refused"),
        ({"sig": "0x"}, "sig"),
    ],
)
def test_a_malformed_signature_body_names_the_field(payload: dict, field: str) -> None:
    status, _, body = _call("POST", f"/api/jobs/{JOB_ID}/signature", json=payload)
    assert status == 400
    assert '"BAD_REQUEST"' in body and f'"field": "{field}"' in body


def test_a_bad_job_id_is_refused_before_anything_else() -> None:
    status, _, body = _call("POST", "/api/jobs/0x1234/signature", json={"refused": True})
    assert status == 400 and '"field": "job_id"' in body
