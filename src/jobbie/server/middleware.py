"""ASGI middleware: request ids, access logs, panic recovery, API keys and body-size limits.

Written as plain ASGI callables (no BaseHTTPMiddleware) so they add microseconds, not tens
of them, and so a long-poll or streamed response passes straight through.
"""

from __future__ import annotations

import hmac
import itertools
import logging
import os
import time
from collections.abc import Callable, Sequence

import msgspec
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobbie.keys import ApiKey
from jobbie.logs import AccessLog, request_id
from jobbie.models import ErrorBody

log = logging.getLogger("jobbie.server")

_REQUEST_ID = b"x-request-id"
# Generated request ids: a random prefix per process, then a counter (16 hex digits in all).
# Unique without a system call per request (os.urandom showed in profiles of busy servers).
_ID_PREFIX = os.urandom(4).hex()
_ID_COUNTER = itertools.count()
# (method, route template, status, seconds)
Observer = Callable[[str, str, int, float], None]
_OPEN_PATHS = ("/healthz",)
_SEARCH_PATH = "/api/v1/jobs/search"
# The scope key holding the caller's name for the audit log (see jobbie.keys).
ACTOR = "jobbie.actor"
_PROTECTABLE = ("/metrics", "/openapi.json")


def _error_body(status: int, code: str, message: str) -> tuple[int, bytes]:
    return status, msgspec.json.encode(ErrorBody(error=message, code=code))


async def send_error(send: Send, status: int, code: str, message: str) -> None:
    _, body = _error_body(status, code, message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _valid_request_id(value: bytes) -> bool:
    return 0 < len(value) <= 128 and all(33 <= c < 127 for c in value)


class RequestContextMiddleware:
    """Gives each request an id (echoing a sane client-sent one), puts it on every response,
    logs one JSON access line, and turns an unhandled exception into a logged 500."""

    def __init__(
        self, app: ASGIApp, *, access: AccessLog | None = None, observe: Observer | None = None
    ) -> None:
        self.app = app
        self.access = access
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = b""
        for name, value in scope["headers"]:
            if name == _REQUEST_ID:
                rid = value if _valid_request_id(value) else b""
                break
        if not rid:
            rid = f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFF:08x}".encode()
        token = request_id.set(rid.decode())
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (_REQUEST_ID, rid)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            status = status or 499  # gone while its body was read: not a server error
        except Exception:
            log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if status == 0:
                status = 500
                message = f"internal server error (request id {rid.decode()})"
                await send_error(send_with_id, 500, "INTERNAL", message)
        finally:
            elapsed = time.perf_counter() - started
            if self.observe is not None:
                route = scope.get("route")
                self.observe(scope["method"], getattr(route, "path", "unmatched"), status, elapsed)
            if self.access is not None:
                self.access.record(
                    scope["method"], scope["path"], status, round(elapsed * 1000, 3), rid.decode()
                )
            request_id.reset(token)


class GuardMiddleware:
    """Refuses requests before any handler runs: a missing or wrong API key (401) on /api/
    routes, a read-only key asking for anything but a read (403), and a declared body over
    the size limit (413). The key's actor name goes into the scope for the audit log."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_keys: Sequence[ApiKey],
        max_body_bytes: int,
        protect_metrics: bool = False,
    ) -> None:
        self.app = app
        self.keys = [(k.secret.encode(), k) for k in api_keys]
        self.max_body_bytes = max_body_bytes
        # With --protect-metrics these need a key too (they tell queue names and volumes).
        self.protected = _PROTECTABLE if protect_metrics else ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        needs_key = self.keys and (
            (path.startswith("/api/") and path not in _OPEN_PATHS) or path in self.protected
        )
        if needs_key:
            key = self._authorised(scope)
            if key is None:
                await send_error(send, 401, "UNAUTHORIZED", "missing or invalid API key")
                return
            if key.read_only and not _is_read(scope["method"], path):
                await send_error(send, 403, "FORBIDDEN", "this API key may only read")
                return
            scope[ACTOR] = key.actor
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    await send_error(send, 400, "VALIDATION_ERROR", "invalid Content-Length")
                    return
                if int(value) > self.max_body_bytes:
                    await send_error(
                        send,
                        413,
                        "PAYLOAD_TOO_LARGE",
                        f"request body over the {self.max_body_bytes} byte limit",
                    )
                    return
                break
        await self.app(scope, receive, send)

    def _authorised(self, scope: Scope) -> ApiKey | None:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() != b"bearer":
                    return None
                token = token.strip()
                # Compare against every key so the time taken does not tell which one matched.
                matched = None
                for secret, key in self.keys:
                    if hmac.compare_digest(token, secret):
                        matched = key
                return matched
        return None


def _is_read(method: str, path: str) -> bool:
    """What a read-only key may call: every GET, and job search (a read with a body)."""
    return method in ("GET", "HEAD") or (method == "POST" and path == _SEARCH_PATH)
