"""Cross-site protection for browsers: refuse state changes from other sites' pages, and
foreign Host names on a loopback-bound server (DNS rebinding).

Non-browser clients send no Origin and no Sec-Fetch-Site, so only the Host check touches them,
and they send the address they connected to. Same-origin pages (the server's own console) pass:
their Origin names the host they were served from.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from jobbie.config import is_loopback_host
from jobbie.server.middleware import send_error

_SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))
# Host values judged so far (clients send the same one on every request); bounded, since any
# client can send any Host.
_HOSTS_REMEMBERED = 256
_DEFAULT_PORTS = {"http": "80", "https": "443"}


class SiteGuard:
    """403 for a state-changing request from a foreign origin, or for a Host this server
    does not answer to."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        loopback: bool,
        allowed_hosts: Sequence[str],
        cors_origins: Sequence[str],
    ) -> None:
        self.app = app
        self.any_host = "*" in allowed_hosts
        self.check_host = not self.any_host and (loopback or bool(allowed_hosts))
        self.loopback = loopback
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)
        self.origins = frozenset(o.lower().rstrip("/") for o in cors_origins)
        self.any_origin = "*" in self.origins
        self._hosts: dict[str, bool] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = origin = fetch_site = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1").lower()
            elif name == b"origin":
                origin = value.decode("latin-1").lower().rstrip("/")
            elif name == b"sec-fetch-site":
                fetch_site = value.decode("latin-1").lower()
        if host is not None and self.check_host and not self._host_ok(host):
            await send_error(
                send, 403, "FORBIDDEN", f"host {host!r} is not served here (see --allowed-host)"
            )
            return
        if scope["method"] not in _SAFE_METHODS and not self._origin_ok(origin, fetch_site, host):
            await send_error(
                send,
                403,
                "FORBIDDEN",
                "cross-site request refused: the Origin is not this server's"
                " and not allowed by --cors-origin",
            )
            return
        await self.app(scope, receive, send)

    def _host_ok(self, host: str) -> bool:
        ok = self._hosts.get(host)
        if ok is None:
            if len(self._hosts) >= _HOSTS_REMEMBERED:
                self._hosts.clear()
            ok = self._hosts[host] = self._judge_host(host)
        return ok

    def _judge_host(self, host: str) -> bool:
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.strip("[]").rstrip(".")
        if name in self.allowed_hosts:
            return True
        return self.loopback and is_loopback_host(name)

    def _origin_ok(self, origin: str | None, fetch_site: str | None, host: str | None) -> bool:
        if origin is None:
            # A browser that sends no Origin still says where the request comes from.
            return fetch_site not in ("cross-site", "same-site")
        if self.any_origin or origin in self.origins:
            return True
        return host is not None and _same_origin(origin, host)


def _same_origin(origin: str, host: str) -> bool:
    """The Origin names the Host the request was sent to (default ports made explicit)."""
    scheme, sep, netloc = origin.partition("://")
    if not sep:
        return False  # "null" (sandboxed pages, files) and other opaque origins
    default = _DEFAULT_PORTS.get(scheme)
    if default is None:
        return False
    return _with_port(netloc, default) == _with_port(host, default)


def _with_port(netloc: str, default: str) -> str:
    if netloc.endswith("]") or ":" not in netloc.rsplit("]", 1)[-1]:
        return f"{netloc}:{default}"
    return netloc
