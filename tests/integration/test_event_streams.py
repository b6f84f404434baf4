"""SSE under load: one event-table read per commit whatever the number of streams, a cap on
streams, slow consumers dropped, and resume ids that never overflow."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import httpx
import pytest

from tests.integration.sse import metric, open_stream, read_until_closed
from tests.serverproc import ServerProcess

MakeServer = Callable[..., ServerProcess]
READS = "jobbie_event_reads_total"


@pytest.mark.parametrize(
    ("header", "query"),
    [
        (b"\xb2", None),  # '²' in latin-1: str.isdigit() says yes, int() says no
        (None, "²"),
        (None, "١٢"),  # Arabic-Indic digits: int() takes them, an event id is ASCII
        (None, "9223372036854775808"),  # 2**63: overflows SQLite's integer
        (None, "99999999999999999999"),
        (None, "-1"),
        (None, " 1"),
    ],
)
def test_resume_ids_beyond_ascii_digits_or_64_bits_are_400(
    api: httpx.Client, header: bytes | None, query: str | None
) -> None:
    headers = {b"Last-Event-ID": header} if header is not None else {}
    params = {"last_event_id": query} if query is not None else {}
    resp = api.get("/api/v1/events", headers=headers, params=params)
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "VALIDATION_ERROR"


def test_the_largest_resume_id_streams(server: ServerProcess) -> None:
    sock = open_stream(server.url, "/api/v1/events?last_event_id=9223372036854775807")
    sock.close()


def _reads_per_commit(url: str, queue: str, commits: int) -> float:
    before = metric(url, READS)
    with httpx.Client(base_url=url, timeout=10) as client:
        for i in range(commits):
            # One at a time: each enqueue is its own commit.
            resp = client.post("/api/v1/enqueue", json={"queue": queue, "payload": i})
            assert resp.status_code == 201
    time.sleep(0.3)  # let the last commit's read happen
    return (metric(url, READS) - before) / commits


def test_event_reads_per_commit_do_not_grow_with_streams(make_server: MakeServer) -> None:
    # No scheduler passes meanwhile: each of their steps is a commit too.
    server = make_server(scheduler_interval=3600)
    quiet = "/api/v1/events?queue=quiet.q&type=dead"
    streams = [open_stream(server.url, quiet)]
    try:
        one = _reads_per_commit(server.url, "busy.q", 40)
        streams += [open_stream(server.url, quiet) for _ in range(29)]
        many = _reads_per_commit(server.url, "busy.q", 40)
    finally:
        for sock in streams:
            sock.close()
    # A read per commit at most (a commit may land while a read runs: then one read covers
    # both); with one read per stream it would be 30 per commit.
    assert one <= 1.1, one
    assert many <= 1.1, many


def test_streams_beyond_the_cap_get_503_with_retry_after(make_server: MakeServer) -> None:
    server = make_server("--max-event-streams", "3")
    streams = [open_stream(server.url, "/api/v1/events") for _ in range(3)]
    try:
        resp = httpx.get(f"{server.url}/api/v1/events", timeout=10)
        assert resp.status_code == 503
        assert resp.json()["code"] == "UNAVAILABLE"
        assert int(resp.headers["retry-after"]) > 0
        streams.pop().close()
        deadline = time.monotonic() + 10
        while metric(server.url, "jobbie_event_streams") > 2:
            assert time.monotonic() < deadline, "a closed stream kept its slot"
            time.sleep(0.05)
        streams.append(open_stream(server.url, "/api/v1/events"))
    finally:
        for sock in streams:
            sock.close()


def test_a_slow_consumer_is_dropped_after_a_bounded_buffer(make_server: MakeServer) -> None:
    server = make_server()
    slow = open_stream(server.url, "/api/v1/events?queue=slow.q", rcvbuf=4096)
    fast = open_stream(server.url, "/api/v1/events?queue=other.q")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for _ in range(60):
                jobs = [{"queue": "slow.q", "payload": "x" * 200} for _ in range(500)]
                resp = client.post("/api/v1/enqueue/batch", json={"jobs": jobs})
                assert resp.status_code == 201
                if metric(server.url, "jobbie_event_streams_dropped_total") >= 1:
                    break
            else:
                raise AssertionError("the slow stream was never dropped")
            assert metric(server.url, "jobbie_event_streams") == 1  # the other one lives
        received = read_until_closed(slow)
        assert b"dropped: the client read too slowly" in received[-500:]
        assert received.endswith(b"\r\n0\r\n\r\n")
    finally:
        for sock in (slow, fast):
            with contextlib.suppress(OSError):
                sock.close()
