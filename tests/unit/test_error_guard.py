"""The outer guard: an exception no handler expected becomes a logged JSON 500 that names the
request id, on the Starlette path and on the raw ASGI path alike (never plain text)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from jobbie.server.errors import EXCEPTION_HANDLERS
from jobbie.server.middleware import RequestContextMiddleware


async def broken(request: Request) -> Response:
    raise OverflowError("a bug")


async def broken_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    raise OverflowError("a bug")


def call(app: object) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/boom", headers={"x-request-id": "rid-42"})

    # A thread of its own: an event loop may already run in this one (browser tests).
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


@pytest.mark.parametrize("path", ["starlette", "asgi"])
def test_unexpected_exception_is_a_logged_json_500_with_the_request_id(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    inner = (
        Starlette(routes=[Route("/boom", broken)], exception_handlers=EXCEPTION_HANDLERS)
        if path == "starlette"
        else broken_asgi
    )
    with caplog.at_level(logging.ERROR, logger="jobbie.server"):
        resp = call(RequestContextMiddleware(inner))
    assert resp.status_code == 500
    assert resp.headers["content-type"] == "application/json"
    assert resp.json() == {
        "error": "internal server error (request id rid-42)",
        "code": "INTERNAL",
    }
    assert resp.headers["x-request-id"] == "rid-42"
    assert any(r.exc_info and "unhandled error" in r.getMessage() for r in caplog.records)
