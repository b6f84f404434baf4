"""What the clients do on the wire beyond the API: the retry rule (an enqueue is never sent
twice; harmless calls are repeated when the connection drops), proxies from the environment
and the TLS settings. A small socket server stands in for a misbehaving server or a proxy."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterator

import pytest

from jobbie import AsyncClient, Client, ServerUnreachable
from jobbie.client._transport import ssl_context
from tests.client.helpers import RawServer


@pytest.fixture
def hangs_up_once() -> Iterator[RawServer]:
    srv = RawServer(close_first=1)
    yield srv
    srv.close()


def test_a_stale_keep_alive_connection_is_replaced_before_sending() -> None:
    srv = RawServer(close_first=0, idle_close=True)
    try:
        with Client(srv.url, timeout=5) as client:
            for _ in range(3):
                # A POST that is never repeated: it succeeds only because the pool noticed
                # the closed connection before writing to it.
                assert client.cancel_job("job_x") == "ok"
                time.sleep(0.05)
        assert len(srv.requests) == 3

        async def main() -> None:
            async with AsyncClient(srv.url, timeout=5) as client:
                for _ in range(3):
                    assert await client.cancel_job("job_x") == "ok"
                    await asyncio.sleep(0.05)

        asyncio.run(main())
        assert len(srv.requests) == 6
    finally:
        srv.close()


def test_an_enqueue_is_never_sent_twice(hangs_up: RawServer) -> None:
    with Client(hangs_up.url, timeout=5) as client, pytest.raises(ServerUnreachable):
        client.enqueue("q", {"n": 1})
    assert hangs_up.requests == [b"POST /api/v1/enqueue HTTP/1.1"]
    with Client(hangs_up.url, timeout=5) as client, pytest.raises(ServerUnreachable):
        client.fetch("q", timeout=0)
    assert len(hangs_up.requests) == 2  # a fetch leases jobs: never repeated either


def test_harmless_calls_are_repeated_once(hangs_up_once: RawServer) -> None:
    with Client(hangs_up_once.url, timeout=5) as client:
        assert client.health().status == "ok"  # a GET: sent again after the hang-up
        assert hangs_up_once.requests == [b"GET /healthz HTTP/1.1"] * 2


def test_fenced_acks_are_repeated_unfenced_are_not(hangs_up: RawServer) -> None:
    with Client(hangs_up.url, timeout=5) as client:
        with pytest.raises(ServerUnreachable):
            client.ack("job_a", worker_id="w", attempt=1)
        assert len(hangs_up.requests) == 2
        with pytest.raises(ServerUnreachable):
            client.ack("job_b")  # no fence: a repeat could complete a later attempt
        assert len(hangs_up.requests) == 3
        with pytest.raises(ServerUnreachable):
            client.heartbeat({"job_a": {"attempt": 1}}, worker_id="w")
        assert len(hangs_up.requests) == 5


def test_async_client_follows_the_same_rule(hangs_up: RawServer) -> None:
    async def main() -> None:
        async with AsyncClient(hangs_up.url, timeout=5) as client:
            with pytest.raises(ServerUnreachable):
                await client.enqueue("q", {"n": 1})
            assert len(hangs_up.requests) == 1
            with pytest.raises(ServerUnreachable):
                await client.fail("job_a", "boom", worker_id="w", attempt=1)
            assert len(hangs_up.requests) == 3
            with pytest.raises(ServerUnreachable):
                await client.ack_and_fetch("job_a", worker_id="w", attempt=1, queues="q")
            assert len(hangs_up.requests) == 4  # its leases would be lost: never repeated

    asyncio.run(main())


def test_proxies_come_from_the_environment(
    hangs_up_once: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = hangs_up_once
    target = "http://jobbie.invalid:8080"
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    with Client(target, timeout=5) as client:
        assert client.health().status == "ok"
    # The proxy got the absolute URL (after one hang-up and the GET's repeat).
    assert proxy.requests[-1] == b"GET http://jobbie.invalid:8080/healthz HTTP/1.1"

    async def main() -> str:
        async with AsyncClient(target, timeout=5) as client:
            return (await client.health()).status

    assert asyncio.run(main()) == "ok"
    assert proxy.requests[-1] == b"GET http://jobbie.invalid:8080/healthz HTTP/1.1"

    monkeypatch.setenv("NO_PROXY", "jobbie.invalid")
    seen = len(proxy.requests)
    with Client(target, timeout=2) as client, pytest.raises(ServerUnreachable):
        client.health()  # straight to the (unresolvable) host, not through the proxy
    assert len(proxy.requests) == seen


def test_tls_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    default = ssl_context(True)
    assert default.verify_mode == ssl.CERT_REQUIRED and default.check_hostname
    off = ssl_context(False)
    assert off.verify_mode == ssl.CERT_NONE and not off.check_hostname
    mine = ssl.create_default_context()
    assert ssl_context(mine) is mine
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/bundle.pem")
    with pytest.raises(OSError):
        ssl_context(True)  # the environment's bundle is used (and this one is missing)
