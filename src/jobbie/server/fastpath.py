"""A raw ASGI fast path for the worker protocol.

The worker routes (enqueue, fetch, ack, fail, heartbeat, release) are most of a busy server's
requests, and Starlette's routing and request/response objects cost about as much CPU as the
rest of such a request. Routes marked `fast` in the route table are dispatched here by plain
string matching and answered with msgspec-encoded bodies; they stay described by the same
table (and so by the OpenAPI document), and every other route falls through to Starlette.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import msgspec
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from jobbie.errors import JobbieError, PayloadTooLarge
from jobbie.models import ErrorBody
from jobbie.server.allow import not_allowed
from jobbie.server.bodies import decode_body
from jobbie.server.runtime import Runtime
from jobbie.store.base import Store

T = TypeVar("T")
# (status, body): the body is msgspec-encodable, or None for an empty answer (204)
Reply = tuple[int, Any]
FastHandler = Callable[["Call"], Awaitable[Reply]]
_JSON_HEADERS = [(b"content-type", b"application/json")]


class Call:
    """One fast-path request: its path parameter, body, runtime and connection."""

    __slots__ = ("_receive", "param", "rt", "scope")

    def __init__(self, scope: Scope, receive: Receive, param: str, rt: Runtime) -> None:
        self.scope = scope
        self._receive = receive
        self.param = param  # the route's one path parameter (a job id), or ""
        self.rt = rt

    @property
    def store(self) -> Store:
        assert self.rt.store is not None, "the store is opened in the lifespan"
        return self.rt.store

    async def json(self, type_: type[T]) -> T:
        """The body decoded and validated as `type_` (size-limited while it is read)."""
        limit = self.rt.settings.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await self._receive()
            if message["type"] != "http.request":
                raise ClientDisconnect  # gone before the whole body arrived
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body over the {limit} byte limit")
            chunks.append(chunk)
            more = message.get("more_body", False)
        content_type = ""
        for name, value in self.scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
                break
        return decode_body(b"".join(chunks), content_type, type_)

    async def disconnected(self) -> None:
        """Return once the client has closed the connection (the body is already read)."""
        while (await self._receive())["type"] != "http.disconnect":
            pass


class FastPath:
    """Answers the `fast` routes itself; passes everything else to `app`."""

    def __init__(self, app: ASGIApp, rt: Runtime, routes: Sequence[Any]) -> None:
        self.app = app
        self.rt = rt
        self._exact: dict[tuple[str, str], Any] = {}
        self._prefixed: list[tuple[str, str, Any]] = []
        self._paths: set[str] = set()
        self._prefixes: tuple[str, ...] = ()
        for route in routes:
            if not route.fast:
                continue
            if "{" in route.path:
                prefix = route.path[: route.path.index("{")]
                assert route.path.endswith("}"), "a fast route's parameter comes last"
                self._prefixed.append((route.method, prefix, route))
                self._prefixes += (prefix,)
            else:
                self._exact[(route.method, route.path)] = route
                self._paths.add(route.path)

    def _match(self, method: str, path: str) -> tuple[Any, str] | None:
        route = self._exact.get((method, path))
        if route is not None:
            return route, ""
        for route_method, prefix, route in self._prefixed:
            if method == route_method and path.startswith(prefix):
                param = path[len(prefix) :]
                if param and "/" not in param:
                    return route, param
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self._match(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if found is None:
            if scope["type"] == "http":
                path = scope["path"]
                # A fast route's path with another method: Starlette does not know these paths.
                if path in self._paths or path.startswith(self._prefixes):
                    allowed = self.rt.allow.allowed(path)
                    if allowed and scope["method"] not in allowed:
                        body, headers = not_allowed(scope["method"], allowed)
                        await _send(send, 405, body, headers)
                        return
            await self.app(scope, receive, send)
            return
        route, param = found
        scope["route"] = route  # labels the request-latency metric with the template
        try:
            status, body = await route.handler(Call(scope, receive, param, self.rt))
        except JobbieError as exc:
            status, body = exc.status, ErrorBody(error=exc.message, code=exc.code)
        await _send(send, status, body)


async def _send(
    send: Send, status: int, body: Any, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    """An answer with a msgspec-encoded JSON body, or an empty one when `body` is None."""
    if body is None:
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    content = msgspec.json.encode(body)
    headers = [*_JSON_HEADERS, (b"content-length", str(len(content)).encode()), *(extra or ())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
