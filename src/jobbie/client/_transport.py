"""How `Client` puts a request on the wire: the standard library's http.client with a small
pool (chosen by measurement, see BENCHMARKS.md), with proxies from the environment and a CA
bundle for HTTPS, as httpx gave them.

Retries follow one rule: a request is sent again only when repeating it is harmless (the call
says so: GETs, fenced acks, fails, heartbeats, releases) and the connection dropped under it.
Anything else that may have reached the server (an enqueue, a fetch) is never sent twice: the
caller gets `ServerUnreachable` and decides. Stale keep-alive connections are noticed by the
pool before a request is written on them, so they need no retry at all.

A transport talks to one server. It reports a failure as `Unanswered`, saying whether the
request may have reached the server, so that `_failover` can tell when trying the client's next
server is safe.
"""

from __future__ import annotations

import base64
import http.client
import os
import select
import socket
import ssl
import urllib.request
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlencode, urlsplit

from jobbie.client._failover import Unanswered

if TYPE_CHECKING:
    import httpx

    from jobbie.client._calls import Call

Verify = bool | str | ssl.SSLContext
"""`True`: the CA bundle from SSL_CERT_FILE / SSL_CERT_DIR, else certifi's, else the system's;
a path: that CA bundle; an `ssl.SSLContext`: used as is; `False`: no certificate checks."""

_REPEATS = 2  # a harmless call is sent at most this many times over dropped connections


class Headers(Protocol):
    """Case-insensitive header lookup (http.client's, aiohttp's and httpx's all have it)."""

    def get(self, name: str, /) -> str | None: ...


class Response(Protocol):
    """What the answer decoders read: the status, the body and the headers."""

    @property
    def status_code(self) -> int: ...
    @property
    def content(self) -> bytes: ...
    @property
    def headers(self) -> Headers: ...
    @property
    def reason_phrase(self) -> str: ...
    @property
    def text(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer, fully read."""

    status_code: int
    content: bytes
    headers: Headers
    reason_phrase: str = ""

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


def ssl_context(verify: Verify) -> ssl.SSLContext:
    """The TLS context for HTTPS servers (see `Verify`)."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if isinstance(verify, str):
        return ssl.create_default_context(
            cafile=verify if os.path.isfile(verify) else None,
            capath=verify if os.path.isdir(verify) else None,
        )
    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile or None, capath=capath or None)
    try:
        import certifi
    except ImportError:  # no certifi: the system's trust store
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


def env_proxy(url: str) -> str | None:
    """The proxy for `url` from HTTP_PROXY / HTTPS_PROXY / ALL_PROXY, unless NO_PROXY (or the
    platform's bypass list) excludes its host."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(parts.netloc):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def full_path(path: str, params: Mapping[str, str] | None) -> str:
    return f"{path}?{urlencode(params)}" if params else path


class HttpClientTransport:
    """Keep-alive connections to one server on the standard library's `http.client`, shared
    between threads (idle connections wait in a deque; each request holds one alone).

    Chosen by measurement over urllib3 and httpx (`python -m bench.clients cpu`): the same
    HTTP/1.1 machinery with the least CPU per request. A pooled connection that the server has
    closed (or that has stray bytes) is noticed before it is written to, and replaced.
    """

    def __init__(
        self, base_url: str, headers: Mapping[str, str], verify: Verify, pool_size: int = 10
    ) -> None:
        parts = urlsplit(base_url)  # checked by `parse_urls`
        self.base_url = base_url
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._tls = ssl_context(verify) if self._https else None
        self._prefix = parts.path.rstrip("/")
        self._headers = dict(headers)
        self._proxy: tuple[str, int] | None = None
        self._tunnel_headers: dict[str, str] = {}
        if (proxy := env_proxy(base_url)) is not None:
            p = urlsplit(proxy)
            self._proxy = (p.hostname or "", p.port or 80)
            auth: dict[str, str] = {}
            if p.username is not None:
                token = f"{unquote(p.username)}:{unquote(p.password or '')}".encode()
                auth["proxy-authorization"] = "Basic " + base64.b64encode(token).decode()
            if self._https:
                self._tunnel_headers = auth  # CONNECT through the proxy, then TLS
            else:
                self._prefix = f"http://{parts.netloc}{self._prefix}"  # absolute-form
                self._headers.update(auth)
        self._json_headers = {**self._headers, "content-type": "application/json"}
        self._idle: deque[http.client.HTTPConnection] = deque()
        self._pool_size = pool_size

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        host, port = self._proxy or (self._host, self._port)
        conn: http.client.HTTPConnection
        if self._https:
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=self._tls)
            if self._proxy is not None:
                conn.set_tunnel(self._host, self._port, headers=self._tunnel_headers)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.connect()
        sock = conn.sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _checkout(self, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection still open (True), else a new one (False)."""
        while True:
            try:
                conn = self._idle.pop()
            except IndexError:
                return self._connect(timeout), False
            sock = conn.sock
            # Readable while idle means closed by the server (or garbage): never reuse it.
            if sock is not None and not _readable(sock):
                return conn, True
            conn.close()

    def request(self, call: Call[Any], timeout: float) -> Answer:
        method, body, retry = call.method, call.body, call.repeatable
        read_timeout = call.read_timeout or timeout
        url = self._prefix + full_path(call.path, call.params)
        headers = self._json_headers if body is not None else self._headers
        for sent in range(1, _REPEATS + 1):
            try:
                conn, _ = self._checkout(timeout)
            except OSError as exc:  # refused, unresolvable, TLS: nothing was sent
                raise Unanswered(self.base_url, exc, sent=False) from exc
            try:
                conn.sock.settimeout(read_timeout)
                conn.request(method, url, body, headers)
                resp = conn.getresponse()
                content = resp.read()
            except (http.client.HTTPException, ConnectionError) as exc:
                conn.close()  # dropped under the request: it may have been acted on
                if retry and sent < _REPEATS:
                    continue
                raise Unanswered(self.base_url, exc, sent=True) from exc
            except OSError as exc:  # a timeout, or worse
                conn.close()
                raise Unanswered(self.base_url, exc, sent=True) from exc
            if resp.will_close or len(self._idle) >= self._pool_size:
                conn.close()
            else:
                self._idle.append(conn)
            return Answer(resp.status, content, resp.headers, resp.reason)
        raise AssertionError("unreachable")

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


class HttpxTransport:
    """Requests through a given httpx transport (`Client(transport=...)`, e.g. a MockTransport
    in tests). httpx is only needed when one is passed."""

    def __init__(
        self, base_url: str, headers: Mapping[str, str], transport: httpx.BaseTransport
    ) -> None:
        import httpx

        self._httpx = httpx
        self.base_url = base_url
        self._client = httpx.Client(base_url=base_url, headers=headers, transport=transport)

    def request(self, call: Call[Any], timeout: float) -> Answer:
        httpx = self._httpx
        try:
            resp = self._client.request(**httpx_arguments(httpx, call, timeout))
        except httpx.TransportError as exc:
            raise httpx_unanswered(httpx, self.base_url, exc) from exc
        return Answer(resp.status_code, resp.content, resp.headers, resp.reason_phrase)

    def close(self) -> None:
        self._client.close()


def _readable(sock: socket.socket) -> bool:
    """Whether `sock` has something to read (or hit EOF) right now. poll, not select, which
    fails on descriptors above 1023."""
    if not hasattr(select, "poll"):  # Windows
        return bool(select.select([sock], [], [], 0)[0])
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def httpx_arguments(httpx: Any, call: Call[Any], timeout: float) -> dict[str, Any]:
    """The arguments of `httpx.Client.request` (and of its async twin) for `call`."""
    return {
        "method": call.method,
        "url": call.path,
        "content": call.body,
        "params": call.params,
        "headers": {"content-type": "application/json"} if call.body is not None else None,
        "timeout": httpx.Timeout(timeout, read=call.read_timeout or timeout),
    }


def httpx_unanswered(httpx: Any, url: str, exc: Exception) -> Unanswered:
    """An httpx failure as `Unanswered`: nothing was sent when it failed to connect or to get a
    connection from its pool."""
    unsent = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
    return Unanswered(url, exc, sent=not isinstance(exc, unsent))
