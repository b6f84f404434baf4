"""PostgreSQL crashes and comes back under load (issue 12, part 4): while it is down requests
answer 503 within seconds (no hang) and `/readyz` says so; once it is back the server
reconnects and work resumes on its own; no acknowledged write is lost.

It runs a throwaway PostgreSQL cluster of its own (`cluster.ThrowawayPostgres`), never the
shared test server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest

from tests.integration.cluster import ThrowawayPostgres
from tests.integration.faultload import Load, Record, report, wait_for
from tests.integration.helpers import error_code
from tests.serverproc import ServerProcess

# How long a request may take while the database is down (the bound): the server
# notices the loss on its LISTEN connection and stops waiting for the pool's full 5 s.
ANSWER_WITHIN_S = 5


@pytest.fixture
def database() -> Iterator[ThrowawayPostgres]:
    pg = ThrowawayPostgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.destroy()


def acked_at_least(record: Record, n: int) -> bool:
    return len(record.acked) >= n


def ready(url: str) -> bool:
    return httpx.get(f"{url}/readyz", timeout=ANSWER_WITHIN_S + 2).status_code == 200


def test_requests_answer_503_while_postgres_is_down_and_work_resumes(
    tmp_path: Path, database: ThrowawayPostgres
) -> None:
    server = ServerProcess(tmp_path / "node", database=database.url, scheduler_interval=1).start()
    record = Record(queue="outage")
    try:
        load = Load(server.url, record)
        try:
            assert wait_for(partial(acked_at_least, record, 100), 30), record
            database.crash()
            down = time.monotonic()
            # While it is down: a write answers 503 in bounded time, and /readyz says so.
            began = time.monotonic()
            resp = httpx.post(
                f"{server.url}/api/v1/enqueue",
                json={"queue": record.queue},
                timeout=ANSWER_WITHIN_S + 5,
            )
            answered_s = time.monotonic() - began
            assert resp.status_code == 503, resp.text
            assert error_code(resp) == "UNAVAILABLE", resp.text
            assert answered_s < ANSWER_WITHIN_S
            readyz = httpx.get(f"{server.url}/readyz", timeout=ANSWER_WITHIN_S + 5)
            assert readyz.status_code == 503, readyz.text
            assert readyz.json()["status"] == "unavailable", readyz.text
            # Liveness does not depend on the database: restarting would not help.
            assert httpx.get(f"{server.url}/healthz", timeout=ANSWER_WITHIN_S).status_code == 200
            # The load threads meet the outage too, answered 503 rather than left hanging (one
            # that was waiting for a connection when it began gets its 503 when that wait ends).
            assert wait_for(lambda: record.refused > 0, 15), "no load request met the outage"
            acked_during = len(record.acked)
            database.start()
            outage_s = time.monotonic() - down
            back = time.monotonic()
            assert wait_for(partial(ready, server.url), 30), "/readyz did not turn ready again"
            recovered_s = time.monotonic() - back
            # Work resumes on its own: the same load threads get acks again.
            assert wait_for(partial(acked_at_least, record, acked_during + 100), 30), record
        finally:
            load.finish()
        lost_enqueues, lost_acks = audit(server.url, record)
    finally:
        server.stop()
    assert not record.unexpected, record.unexpected[:10]
    assert record.connection_errors == 0, "a request hung past the client's 10 s timeout"
    assert record.refused > 0, "no request met the outage: the test proves nothing"
    assert (lost_enqueues, lost_acks) == (0, 0)
    report(
        "postgres-restart",
        answered_enqueues=len(record.enqueued),
        answered_acks=len(record.acked),
        answered_503=record.refused,
        outage_s=round(outage_s, 1),
        first_503_s=round(answered_s, 2),
        ready_again_s=round(recovered_s, 2),
        jobs_lost=0,
    )


def audit(url: str, record: Record) -> tuple[int, int]:
    """Every answered enqueue exists, every answered ack is completed; then every job left
    (leased when the database went down) is handed out again and completes."""
    lost_enqueues = lost_acks = 0
    with httpx.Client(base_url=url, timeout=30) as client:
        completed = set()
        for job_id in sorted(record.enqueued | record.fetched):
            resp = client.get(f"/api/v1/jobs/{job_id}")
            if resp.status_code == 404:
                lost_enqueues += 1
                continue
            assert resp.status_code == 200, resp.text
            if resp.json()["state"] == "completed":
                completed.add(job_id)
            elif job_id in record.acked:
                lost_acks += 1
        empty_rounds = 0
        for _ in range(30):
            # Past every lease and backoff (a pass reclaims a lease, the next promotes it).
            assert client.post("/_test/clock", json={"seconds": 3600}).status_code == 200
            resp = client.post(
                "/api/v1/fetch",
                json={"queues": [record.queue], "worker_id": "auditor", "timeout": 0,
                      "count": 500},
            )  # fmt: skip
            if resp.status_code == 204:
                empty_rounds += 1
                if empty_rounds == 3:
                    break
                continue
            empty_rounds = 0
            assert resp.status_code == 200, resp.text
            for job in resp.json()["jobs"]:
                acked = client.post(
                    f"/api/v1/ack/{job['job_id']}",
                    json={"worker_id": "auditor", "attempt": job["attempt"]},
                )
                assert acked.status_code == 200, acked.text
                completed.add(job["job_id"])
        left = sorted(record.enqueued - completed)
        assert not left, [client.get(f"/api/v1/jobs/{j}").text[:300] for j in left[:3]]
    return lost_enqueues, lost_acks
