"""Connection limits (loopback only, bounded): idle connections and slowloris senders are
closed in time while a normal request still succeeds promptly; oversized headers get 431;
connections over --max-connections get a JSON 503; a client that leaves mid-body is no 500."""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.serverproc import ServerProcess

MakeServer = Callable[..., ServerProcess]
TIMEOUTS = ("--header-timeout", "1", "--body-timeout", "1", "--keep-alive", "1")


def connect(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.setblocking(False)
    return sock


@contextlib.contextmanager
def sockets(server: ServerProcess, n: int) -> Iterator[list[socket.socket]]:
    opened = [connect(server) for _ in range(n)]
    try:
        yield opened
    finally:
        for sock in opened:
            sock.close()


def wait_closed(socks: list[socket.socket], within: float) -> tuple[int, bytes]:
    """Wait until the server closed every socket; return (still open, bytes received)."""
    sel = selectors.DefaultSelector()
    for sock in socks:
        sel.register(sock, selectors.EVENT_READ, sock)
    received = b""
    deadline = time.monotonic() + within
    open_count = len(socks)
    while open_count and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.1):
            sock = key.data
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            received += data
            if not data:
                sel.unregister(sock)
                open_count -= 1
    sel.close()
    return open_count, received


def prompt_request(server: ServerProcess) -> None:
    started = time.monotonic()
    resp = httpx.get(f"{server.url}/api/v1/queues", timeout=5.0)
    assert resp.status_code == 200
    assert time.monotonic() - started < 2.0  # generous: a normal answer takes milliseconds


def test_idle_connections_are_closed_in_time(make_server: MakeServer) -> None:
    server = make_server(*TIMEOUTS)
    with sockets(server, 500) as idle:
        prompt_request(server)
        still_open, _ = wait_closed(idle, within=15)
        assert still_open == 0
    prompt_request(server)


def test_a_slowloris_is_closed_despite_trickling(make_server: MakeServer) -> None:
    server = make_server(*TIMEOUTS)
    line = b"GET /api/v1/queues HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    with sockets(server, 100) as slow:
        started = time.monotonic()
        closed_at = None
        for i in range(40):  # one byte per connection every 0.1 s, for up to 4 s
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.send(line[i : i + 1] if i < len(line) else b"a")
            if i == 5:
                prompt_request(server)
            still_open, _ = wait_closed(slow, within=0.1)
            if still_open == 0:
                closed_at = time.monotonic() - started
                break
        assert closed_at is not None, "slowloris connections still open after 4 s"
        assert closed_at < 4
    prompt_request(server)


@pytest.mark.parametrize("path", ["/api/v1/jobs/search", "/api/v1/enqueue"])
def test_a_slow_body_is_cut_and_not_logged_as_a_500(make_server: MakeServer, path: str) -> None:
    server = make_server(*TIMEOUTS)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n{"
    ).encode()
    with sockets(server, 20) as slow:
        for sock in slow:
            sock.send(head)
        still_open, received = wait_closed(slow, within=10)
        assert still_open == 0
        assert b" 500 " not in received
    # The same when the client itself hangs up half-way through its body.
    with sockets(server, 1) as [sock]:
        sock.send(head)
        time.sleep(0.2)
    prompt_request(server)
    time.sleep(0.5)
    log = server.log()
    assert "unhandled error" not in log
    statuses = [json.loads(line).get("status") for line in log.splitlines() if '"status"' in line]
    assert 500 not in statuses
    assert 499 in statuses


def test_oversized_headers_get_431(make_server: MakeServer) -> None:
    server = make_server("--max-header-bytes", "8192", "--max-headers", "20")
    big = httpx.get(f"{server.url}/healthz", headers={"x-big": "a" * 10_000})
    assert big.status_code == 431
    assert big.json()["code"] == "HEADERS_TOO_LARGE"
    many = httpx.get(f"{server.url}/healthz", headers={f"x-h{i}": "1" for i in range(30)})
    assert many.status_code == 431
    assert httpx.get(f"{server.url}/healthz", headers={"x-ok": "a" * 4000}).status_code == 200


def test_keep_alive_connections_are_closed_when_idle(make_server: MakeServer) -> None:
    server = make_server(*TIMEOUTS)
    with sockets(server, 1) as [sock]:
        sock.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        still_open, received = wait_closed([sock], within=5)
        assert still_open == 0
        assert received.startswith(b"HTTP/1.1 200")


def test_connections_over_the_limit_get_a_json_503(make_server: MakeServer) -> None:
    server = make_server("--max-connections", "20")
    with sockets(server, 20):
        time.sleep(0.2)
        resp = httpx.get(f"{server.url}/api/v1/queues", timeout=5.0)
        assert resp.status_code == 503
        assert resp.json()["code"] == "UNAVAILABLE"
        assert resp.headers["retry-after"] == "1"
    time.sleep(0.3)
    prompt_request(server)
