"""Faults under load: SIGTERM while workers run, and 50 SSE streams while 20,000 jobs are
enqueued elsewhere. (kill -9 is in test_crash.py, a full disk in test_disk_full.py.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.integration.faultload import Load, Record, audit, report, wait_for
from tests.integration.sse import metric, open_stream
from tests.integration.test_shutdown import RawFetch
from tests.serverproc import ServerProcess

MakeServer = Callable[..., ServerProcess]


def test_sigterm_under_load_loses_nothing_and_exits_0(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", extra_args=("--test-clock",)).start()
    record = Record(queue="sigterm.q")
    load = Load(server.url, record)
    parked = [RawFetch(server, "sigterm.empty", timeout=30) for _ in range(3)]
    try:
        wait_for(lambda: len(record.acked) >= 200, 3.0)
        signalled = time.monotonic()
        code: list[int] = []
        stopper = threading.Thread(target=lambda: code.append(server.terminate(timeout=40)))
        stopper.start()
        statuses = [fetch.status(timeout=15) for fetch in parked]
        stopper.join(timeout=45)
        exited_after = time.monotonic() - signalled
    finally:
        load.finish()
        for fetch in parked:
            fetch.close()
    # Requests during the drain get an answer or a closed connection, never a 500.
    assert not record.unexpected, record.unexpected[:10]
    assert statuses == [204, 204, 204]
    assert code == [0], server.log()[-3000:]
    assert exited_after < 20, f"exit took {exited_after:.1f} s"
    again = ServerProcess(tmp_path / "data", scheduler_interval=3600, extra_args=("--test-clock",))
    again.start()
    try:
        result = audit(again, record, head_start=86400)
    finally:
        again.stop()
    report("sigterm", refused_503=record.refused, exit_s=round(exited_after, 2), **vars(result))
    assert (result.lost_enqueues, result.lost_acks, result.never_completed) == (0, 0, 0)


JOBS = 20_000
BATCH = 200
PRODUCERS = 4


def _enqueue_all(url: str, queue: str) -> tuple[float, int]:
    """Enqueue JOBS jobs in batches from PRODUCERS threads; (jobs/s, requests)."""
    batches = JOBS // BATCH

    def one(_: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            jobs = [{"queue": queue, "payload": {"n": i}} for i in range(BATCH)]
            resp = client.post("/api/v1/enqueue/batch", json={"jobs": jobs})
            assert resp.status_code == 201, resp.text

    started = time.perf_counter()
    with ThreadPoolExecutor(PRODUCERS) as pool:
        list(pool.map(one, range(batches)))
    return JOBS / (time.perf_counter() - started), batches


def test_50_idle_streams_cost_one_event_read_per_commit(make_server: MakeServer) -> None:
    # No scheduler passes: every commit is one of the enqueue requests.
    server = make_server(scheduler_interval=3600)
    alone, requests = _enqueue_all(server.url, "load.alone")
    reads = metric(server.url, "jobbie_event_reads_total")
    assert reads == 0  # no stream, no reader
    streams = [open_stream(server.url, "/api/v1/events?queue=quiet.q") for _ in range(50)]
    try:
        before = metric(server.url, "jobbie_event_reads_total")
        with_streams, requests = _enqueue_all(server.url, "load.streams")
        time.sleep(0.3)
        reads = metric(server.url, "jobbie_event_reads_total") - before
        assert metric(server.url, "jobbie_event_streams") == 50
    finally:
        for sock in streams:
            sock.close()
    # At most one read per commit (commits <= requests), whatever the number of streams;
    # one read per stream would be 50 per commit.
    assert reads <= requests + 2, (reads, requests)
    report(
        "sse-50-streams",
        jobs=JOBS,
        jobs_per_s_without_streams=round(alone),
        jobs_per_s_with_50_streams=round(with_streams),
        event_reads=int(reads),
        enqueue_requests=requests,
    )
