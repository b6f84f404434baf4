"""uvicorn's httptools protocol with the connection limits it lacks.

uvicorn bounds neither the time a client takes to send its headers or body nor their size:
an idle or slowloris connection stays open forever, holding a file descriptor. This subclass
adds, per connection: a deadline for the request line and headers (from the connection's
start or the request's first byte, never extended by a trickle of bytes), a deadline for the
body once the headers are in, a cap on header bytes and count (431), and a cap on open
connections answered with a JSON 503. Idle keep-alive connections are closed by uvicorn's own
`timeout_keep_alive`.

Chosen over uvicorn's h11 protocol, which has a header-size cap but no header timeout either,
by cost per request: see RELIABILITY.md ("Hostile input and limits").
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import msgspec
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from jobbie.models import ErrorBody

log = logging.getLogger("jobbie.server")


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_connections: int
    header_timeout: float
    body_timeout: float
    max_header_bytes: int
    max_headers: int


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request over a limit."""


def _raw_response(status: int, reason: bytes, code: str, message: str) -> bytes:
    body = msgspec.json.encode(ErrorBody(error=message, code=code))
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, reason),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


async def _unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    body = msgspec.json.encode(
        ErrorBody(error="too many open connections; retry shortly", code="UNAVAILABLE")
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"1"),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with deadlines and size caps; `limits` is set by `protocol_class`."""

    limits: ClassVar[ConnectionLimits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._header_count = 0
        self._refusal = b""
        self._phase = ""  # "headers" or "body" while a request arrives, else ""

    # --- deadlines ---------------------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        """A deadline passed: the headers (408 if some came) or the body never arrived."""
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._phase == "headers":
            self.transport.write(
                _raw_response(408, b"Request Timeout", "TIMEOUT", "request headers too slow")
            )
        # Closing tells a handler reading the body that the client is gone (http.disconnect).
        self.transport.close()

    # --- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm(self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        if self._refusal:
            self.transport.write(self._refusal)
            self.transport.close()
            return
        super().send_400_response(msg)

    # --- parser callbacks ------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = self._header_count = 0
        self._phase = "headers"
        if self._deadline is None:  # the first request's deadline runs from the connection
            self._arm(self.limits.header_timeout)

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._refuse(f"more than {self.limits.max_headers} headers")
        self._count(len(name) + len(value))
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.limits.max_header_bytes:
            self._refuse(f"request line and headers over {self.limits.max_header_bytes} bytes")

    def _refuse(self, message: str) -> None:
        self._refusal = _raw_response(
            431, b"Request Header Fields Too Large", "HEADERS_TOO_LARGE", message
        )
        raise _Refused(message)  # the parser stops; uvicorn calls send_400_response

    def on_headers_complete(self) -> None:
        self._phase = "body"
        self._arm(self.limits.body_timeout)
        app = self.app
        limit = self.limits.max_connections
        if len(self.connections) > limit or len(self.tasks) >= limit:
            log.warning("over --max-connections (%d): answering 503", limit)
            self.app = _unavailable
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_message_complete(self) -> None:
        self._disarm()
        self._phase = ""
        super().on_message_complete()


def protocol_class(limits: ConnectionLimits) -> type[LimitedHttpToolsProtocol]:
    """The protocol class uvicorn instantiates per connection, with these limits."""
    return type("JobbieHttpProtocol", (LimitedHttpToolsProtocol,), {"limits": limits})
