"""How `AsyncClient` (and so `Worker`) puts a request on the wire: aiohttp, chosen by
measurement (see BENCHMARKS.md), with the retry rule, proxies and CA bundle of `_transport`.

The aiohttp session is opened on the first request, inside the running event loop.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jobbie.client._failover import Unanswered
from jobbie.client._transport import (
    _REPEATS,
    Answer,
    Verify,
    env_proxy,
    httpx_arguments,
    httpx_unanswered,
    ssl_context,
)

if TYPE_CHECKING:
    import httpx

    from jobbie.client._calls import Call


_BIG_BODY = 1024 * 1024


class AiohttpTransport:
    """Keep-alive connections to one server through one aiohttp session; failures are reported
    as `Unanswered` (see `_failover`)."""

    def __init__(
        self, base_url: str, headers: Mapping[str, str], verify: Verify, limit: int = 100
    ) -> None:
        self.base_url = base_url
        self._headers = dict(headers)
        self._json_headers = {**self._headers, "content-type": "application/json"}
        self._verify = verify
        self._limit = limit
        self._session: Any = None
        self._timeouts: dict[tuple[float, float], Any] = {}
        self._aiohttp: Any = None
        self._proxy = env_proxy(base_url)

    def _open(self) -> Any:
        import aiohttp

        self._aiohttp = aiohttp
        ssl: Any = ssl_context(self._verify) if self.base_url.startswith("https:") else None
        self._dropped = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)
        # Failing to connect (refused, DNS, TLS, proxy, a connect timeout) sent nothing; a
        # refused connection is a ClientOSError too, but sending again at once is pointless.
        self._unsent = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
        # aiohttp's writer refuses to write on a pooled connection it has just seen closed
        # (a server gone, or its keep-alive timeout): the request never left whole, so it is
        # sent again on a new connection whatever it is.
        self._closing = aiohttp.ClientConnectionResetError
        self._errors = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._limit, ssl=ssl),
            # The proxy is read from the environment once (`env_proxy`), not per request as
            # trust_env does (two thread-pool hops per request for proxy and netrc lookups).
            trust_env=False,
            skip_auto_headers=("User-Agent",),
            auto_decompress=False,
        )
        return self._session

    def _timeout(self, timeout: float, read_timeout: float) -> Any:
        key = (timeout, read_timeout)
        found = self._timeouts.get(key)
        if found is None:
            found = self._aiohttp.ClientTimeout(
                total=None, sock_connect=timeout, sock_read=read_timeout
            )
            if len(self._timeouts) < 64:
                self._timeouts[key] = found
        return found

    async def request(self, call: Call[Any], timeout: float) -> Answer:
        session = self._session or self._open()
        body, retry = call.body, call.repeatable
        url = self.base_url + call.path
        headers = self._json_headers if body is not None else self._headers
        limits = self._timeout(timeout, call.read_timeout or timeout)
        data: bytes | io.BytesIO | None = body
        if body is not None and len(body) > _BIG_BODY:
            data = io.BytesIO(body)  # aiohttp warns about (and blocks on) big raw bodies
        for sent in range(1, _REPEATS + 1):
            try:
                async with session.request(
                    call.method,
                    url,
                    data=data,
                    params=call.params,
                    headers=headers,
                    timeout=limits,
                    allow_redirects=False,
                    proxy=self._proxy,
                ) as resp:
                    content = await resp.read()
                    return Answer(resp.status, content, resp.headers, resp.reason or "")
            except self._errors as exc:
                if isinstance(data, io.BytesIO):
                    data.seek(0)
                stale = isinstance(exc.__cause__, self._closing)
                unsent = stale or isinstance(exc, self._unsent)
                dropped = retry and isinstance(exc, self._dropped) and not unsent
                if sent < _REPEATS and (stale or dropped):
                    continue
                raise Unanswered(self.base_url, exc, sent=not unsent) from exc
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class AsyncHttpxTransport:
    """Requests through a given httpx async transport (`AsyncClient(transport=...)`)."""

    def __init__(
        self, base_url: str, headers: Mapping[str, str], transport: httpx.AsyncBaseTransport
    ) -> None:
        import httpx

        self._httpx = httpx
        self.base_url = base_url
        self._client = httpx.AsyncClient(base_url=base_url, headers=headers, transport=transport)

    async def request(self, call: Call[Any], timeout: float) -> Answer:
        httpx = self._httpx
        try:
            resp = await self._client.request(**httpx_arguments(httpx, call, timeout))
        except httpx.TransportError as exc:
            raise httpx_unanswered(httpx, self.base_url, exc) from exc
        return Answer(resp.status_code, resp.content, resp.headers, resp.reason_phrase)

    async def close(self) -> None:
        await self._client.aclose()
