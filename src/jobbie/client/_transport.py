"""How `Client` puts a request on the wire: urllib3 (chosen by measurement, see BENCHMARKS.md),
with proxies from the environment and a CA bundle for HTTPS, as httpx gave them.

Retries follow one rule: a request is sent again only when repeating it is harmless (the call
says so: GETs, fenced acks, fails, heartbeats, releases) and the connection dropped under it.
Anything else that may have reached the server (an enqueue, a fetch) is never sent twice: the
caller gets `ServerUnreachable` and decides. Stale keep-alive connections are noticed by the
pool before a request is written on them, so they need no retry at all.
"""

from __future__ import annotations

import os
import ssl
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode, urlsplit

from jobbie.client.errors import ServerUnreachable

if TYPE_CHECKING:
    import httpx

Verify = bool | str | ssl.SSLContext
"""`True`: the CA bundle from SSL_CERT_FILE / SSL_CERT_DIR, else certifi's, else the system's;
a path: that CA bundle; an `ssl.SSLContext`: used as is; `False`: no certificate checks."""

_REPEATS = 2  # a harmless call is sent at most this many times over dropped connections


class Response(Protocol):
    """What the answer decoders read: the status, the body and the headers."""

    @property
    def status_code(self) -> int: ...
    @property
    def content(self) -> bytes: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def reason_phrase(self) -> str: ...
    @property
    def text(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer, fully read."""

    status_code: int
    content: bytes
    headers: Mapping[str, str]
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


class Urllib3Transport:
    """Keep-alive connections to one server through urllib3, shared between threads."""

    def __init__(
        self, base_url: str, headers: Mapping[str, str], verify: Verify, pool_size: int = 10
    ) -> None:
        import urllib3

        self._urllib3 = urllib3
        self.base_url = base_url
        self._headers = dict(headers)
        self._json_headers = {**self._headers, "content-type": "application/json"}
        tls: dict[str, Any] = {}
        if urlsplit(base_url).scheme == "https":
            tls["ssl_context"] = ssl_context(verify)
        proxy = env_proxy(base_url)
        self._pool: Any
        self._manager: Any
        if proxy is not None:
            self._prefix = base_url  # a proxy wants the absolute URL
            self._manager = self._pool = urllib3.ProxyManager(
                proxy, num_pools=1, maxsize=pool_size, **tls
            )
        else:
            self._prefix = ""
            self._manager = urllib3.PoolManager(num_pools=1, maxsize=pool_size, **tls)
            # Straight to the one pool: skips the manager's per-request URL parsing.
            self._pool = self._manager.connection_from_url(base_url)
        self._dropped = (
            urllib3.exceptions.ProtocolError,  # reset or closed before a whole answer came
            urllib3.exceptions.ProxyError,  # the same, seen through a proxy
            ConnectionError,
        )
        self._errors = (urllib3.exceptions.HTTPError, OSError)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        *,
        params: Mapping[str, str] | None,
        timeout: float,
        read_timeout: float,
        retry: bool,
    ) -> Answer:
        url = self._prefix + full_path(path, params)
        headers = self._json_headers if body is not None else self._headers
        limits = self._urllib3.Timeout(connect=timeout, read=read_timeout)
        for sent in range(1, _REPEATS + 1):
            try:
                resp = self._pool.urlopen(
                    method,
                    url,
                    body=body,
                    headers=headers,
                    retries=False,
                    redirect=False,
                    timeout=limits,
                    preload_content=True,
                )
            except self._dropped as exc:
                if retry and sent < _REPEATS:
                    continue
                raise _unreachable(self.base_url, exc) from exc
            except self._errors as exc:
                raise _unreachable(self.base_url, exc) from exc
            return Answer(resp.status, resp.data, resp.headers, resp.reason or "")
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._manager.clear()


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

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        *,
        params: Mapping[str, str] | None,
        timeout: float,
        read_timeout: float,
        retry: bool,
    ) -> Answer:
        httpx = self._httpx
        try:
            resp = self._client.request(
                method,
                path,
                content=body,
                params=params,
                headers={"content-type": "application/json"} if body is not None else None,
                timeout=httpx.Timeout(timeout, read=read_timeout),
            )
        except httpx.TransportError as exc:
            raise _unreachable(self.base_url, exc) from exc
        return Answer(resp.status_code, resp.content, resp.headers, resp.reason_phrase)

    def close(self) -> None:
        self._client.close()


def _unreachable(url: str, exc: BaseException) -> ServerUnreachable:
    return ServerUnreachable(f"{url}: {type(exc).__name__}: {exc}")
