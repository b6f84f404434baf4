"""Several servers behind one client: which one is in use, and when a call moves on to the next.

Servers of one deployment share their PostgreSQL database, so any of them answers any call,
acks and heartbeats of leases taken through another one included. A client sticks to the
server that answers; when it stops answering, the call moves on to the next URL of the list and
later calls stay there (no round-robin: one server's connections stay warm).

Within one call, each server is tried at most once (its transport may itself send a harmless
call twice over a dropped keep-alive connection, see `_transport`), and the next server is
tried only when that cannot make the server act twice:

- nothing was sent (connection refused, connect timeout, DNS or TLS failure): always;
- the request may have reached the server (reset, hung up, read timeout): only for calls that
  are harmless to repeat (GETs; fenced acks, fails, heartbeats, releases). An enqueue or a
  fetch is never sent twice, to the same server or another: the caller gets
  `ServerUnreachable` and decides.

When no server answers, `ServerUnreachable` names every server tried and what went wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar
from urllib.parse import urlsplit

from jobbie.client.errors import ServerUnreachable

T = TypeVar("T")

log = logging.getLogger("jobbie.client")


class Unanswered(Exception):
    """One server gave no answer to one request. Raised by the transports, turned into
    `ServerUnreachable` by `Attempt.unreachable`; `sent` says whether the request may have
    reached the server."""

    def __init__(self, url: str, error: BaseException, *, sent: bool) -> None:
        super().__init__(f"{url}: {type(error).__name__}: {error}")
        self.url = url
        self.error = error
        self.sent = sent


def parse_urls(url: str | Sequence[str]) -> tuple[str, ...]:
    """The server URLs of `url`: one URL, a comma-separated list of them (as `JOBBIE_URL` holds),
    or a sequence of URLs. Blanks and trailing slashes go; a URL given twice counts once.

    Raises `ValueError` naming the culprit when one is not an http(s) URL with a host, or when
    none is given.
    """
    items = url.split(",") if isinstance(url, str) else list(url)
    urls: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"a server URL must be a string, not {type(item).__name__}")
        text = item.strip().rstrip("/")
        if not text:
            continue  # `a,,b` or a trailing comma in a variable
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 - raises ValueError on a port out of range or not a number
        except ValueError as exc:
            raise ValueError(f"not a valid server URL: {item.strip()!r} ({exc})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"not an http(s) server URL: {item.strip()!r} (e.g. http://127.0.0.1:8080)"
            )
        if text not in urls:
            urls.append(text)
    if not urls:
        raise ValueError("no server URL given")
    return tuple(urls)


class Servers(Generic[T]):
    """The transports of a client's servers, in the order of their URLs, and the one in use.

    Shared by every call (and thread) of a client: the server in use only moves forward, from
    the one that failed, so concurrent failures of one server move it by one step only.
    """

    def __init__(self, urls: Sequence[str], transports: Sequence[T]) -> None:
        self.urls = tuple(urls)
        self.transports = tuple(transports)
        self.current = 0

    def attempt(self, retry: bool) -> Attempt[T]:
        """A new call's walk over the servers; `retry`: the call is harmless to repeat."""
        return Attempt(self, retry)

    def moved_from(self, index: int) -> None:
        """Server `index` stopped answering: use the next one, unless another call already
        moved on."""
        if self.current == index and len(self.urls) > 1:
            self.current = (index + 1) % len(self.urls)
            # INFO: the call's outcome (an answer, or ServerUnreachable) is what matters.
            log.info(
                "%s did not answer: moving on to %s", self.urls[index], self.urls[self.current]
            )


class Attempt(Generic[T]):
    """One call's walk over the servers, from the one in use: iterate for the transport to try
    next, and report each failure with `failed`; when the walk ends, raise `unreachable()`."""

    def __init__(self, servers: Servers[T], retry: bool) -> None:
        self.retry = retry
        self._servers = servers
        self._failures: list[Unanswered] = []
        self._stopped = False
        self._index = servers.current

    def __iter__(self) -> Iterator[T]:
        count = len(self._servers.urls)
        start = self._index
        for step in range(count):
            if self._stopped:
                return
            self._index = (start + step) % count
            yield self._servers.transports[self._index]

    def failed(self, failure: Unanswered) -> None:
        """The server just tried gave no answer."""
        self._failures.append(failure)
        self._servers.moved_from(self._index)
        if failure.sent and not self.retry:
            self._stopped = True  # it may have been acted on: never sent again, anywhere

    def unreachable(self) -> ServerUnreachable:
        """The error for a walk that found no answer: each server tried, with its failure
        (with one URL, exactly `url: ErrorType: detail`)."""
        message = "; ".join(str(f) for f in self._failures)
        if self._stopped and len(self._failures) < len(self._servers.urls):
            message += " (not sent to another server: the request may have been acted on)"
        exc = ServerUnreachable(message)
        exc.__cause__ = self._failures[-1].error
        return exc
