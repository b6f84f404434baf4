"""The API routes added with the web console: one queue, bulk dry runs, export, schedule run
now, and the error_signature filter."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import httpx
import msgspec
import pytest

from jobbie.client import Client, SearchTimedOut
from tests.integration.helpers import enqueue, fail, fetch_one
from tests.serverproc import ServerProcess


def _dead(api: httpx.Client, queue: str, error: str) -> str:
    job_id = enqueue(api, queue, payload={}, max_retries=0)
    job = fetch_one(api, queue)
    assert fail(api, job["job_id"], error).status_code == 200
    return job_id


def test_get_one_queue(api: httpx.Client, queue: str) -> None:
    enqueue(api, queue, payload={})
    resp = api.get(f"/api/v1/queues/{queue}")
    assert resp.status_code == 200
    body = resp.json()
    assert body["name"] == queue and body["counts"]["pending"] == 1
    assert api.get("/api/v1/queues/t.never-seen").status_code == 404
    assert api.get("/api/v1/queues/bad%20name").status_code == 400


def test_bulk_dry_run_counts_and_changes_nothing(api: httpx.Client, queue: str) -> None:
    ids = [enqueue(api, queue, payload={"n": n}) for n in range(3)]
    body = {"action": "cancel", "filter": {"queue": queue}, "dry_run": True}
    resp = api.post("/api/v1/jobs/bulk", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"matched": 3}
    assert all(api.get(f"/api/v1/jobs/{i}").json()["state"] == "pending" for i in ids)
    by_ids = {"action": "delete", "job_ids": [*ids[:2], "job_missing"], "dry_run": True}
    assert api.post("/api/v1/jobs/bulk", json=by_ids).json() == {"matched": 2}


def test_export_ndjson_and_csv(api: httpx.Client, queue: str) -> None:
    ids = [enqueue(api, queue, payload={"n": n}, tags={"k": str(n)}) for n in range(3)]
    resp = api.post("/api/v1/jobs/export", json={"queue": queue})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/x-ndjson")
    lines = [msgspec.json.decode(line) for line in resp.text.splitlines()]
    assert [j["id"] for j in lines] == ids  # oldest first
    resp = api.post("/api/v1/jobs/export", json={"queue": queue, "format": "csv"})
    rows = list(csv.reader(io.StringIO(resp.text)))
    assert rows[0] == [
        "id", "queue", "state", "priority", "attempt", "max_retries", "tags",
        "created_at", "started_at", "completed_at", "failed_at", "last_error",
    ]  # fmt: skip
    assert [r[0] for r in rows[1:]] == ids
    assert rows[1][6] == '{"k":"0"}'
    bad = api.post("/api/v1/jobs/export", json={"queue": queue, "format": "xml"})
    assert bad.status_code == 400


def test_run_a_schedule_now(api: httpx.Client, queue: str) -> None:
    created = api.post(
        "/api/v1/schedules",
        json={"name": f"s-{queue}", "queue": queue, "cron": "0 0 1 1 *", "payload": {"a": 1}},
    ).json()
    resp = api.post(f"/api/v1/schedules/{created['id']}/run")
    assert resp.status_code == 201, resp.text
    job = api.get(f"/api/v1/jobs/{resp.json()['job_id']}").json()
    assert job["queue"] == queue and job["payload"] == {"a": 1}
    assert job["tags"]["schedule_id"] == created["id"]
    after = api.get(f"/api/v1/schedules/{created['id']}").json()
    assert after["next_run"] == created["next_run"]
    assert api.post("/api/v1/schedules/sch_missing/run").status_code == 404


def test_error_signature_filters_search_and_bulk(api: httpx.Client, queue: str) -> None:
    a = [_dead(api, queue, f"KeyError: 'k{n}'") for n in range(2)]
    _dead(api, queue, "OSError: disk 2 full")
    search = {"queue": queue, "error_signature": "KeyError: '<str>'"}
    found = api.post("/api/v1/jobs/search", json=search).json()
    assert sorted(j["id"] for j in found["jobs"]) == sorted(a)
    dry = api.post("/api/v1/jobs/bulk", json={"action": "retry", "filter": search, "dry_run": True})
    assert dry.json() == {"matched": 2}


def _enqueue_many(api: httpx.Client, queue: str, n: int, padding: int = 0) -> None:
    """`n` jobs with payloads {"n": i} (and `padding` characters more in a second field)."""
    extra = {"pad": "x" * padding} if padding else {}
    for start in range(0, n, 2000):
        jobs = [
            {"queue": queue, "payload": {"n": i, **extra}}
            for i in range(start, min(n, start + 2000))
        ]
        resp = api.post("/api/v1/enqueue/batch", json={"jobs": jobs})
        assert resp.status_code == 201, resp.text


def test_a_payload_search_past_the_time_limit_says_so(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server("--search-timeout", "0.001")
    with httpx.Client(base_url=server.url, timeout=60) as api:
        # 4 KB payloads: the scan outlasts even PostgreSQL's 25 ms floor per statement.
        _enqueue_many(api, "scan", 20_000, padding=4000)
        # No payload matches, so every job is read: far past the limit.
        resp = api.post("/api/v1/jobs/search", json={"payload_jq": ".n == -1"})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert (body["timed_out"], body["jobs"], body["has_more"]) == (True, [], False)
        assert body["duration_ms"] < 1000
        # The client's page walk cannot make progress past such a page, and says why.
        with Client(server.url) as client:
            assert client.search(payload_jq=".n == -1").timed_out is True
            with pytest.raises(SearchTimedOut):
                list(client.iter_search(payload_jq=".n == -1"))
            # An exact count is a deliberate, unlimited read.
            assert client.count_jobs(payload_jq=".n == -1") == 0
            assert client.count_jobs(queue="scan") == 20_000


def test_total_is_capped_and_says_so(api: httpx.Client, queue: str) -> None:
    _enqueue_many(api, queue, 10_005)
    body = api.post("/api/v1/jobs/search", json={"queue": queue, "limit": 1}).json()
    assert (body["total"], body["total_capped"], body["timed_out"]) == (10_000, True, False)
    resp = api.post(
        "/api/v1/jobs/bulk", json={"action": "retry", "filter": {"queue": queue}, "dry_run": True}
    )
    assert resp.json() == {"matched": 10_005}  # the dry run counts exactly
    few = api.post("/api/v1/jobs/search", json={"queue": queue, "payload_jq": ".n < 3"}).json()
    assert (few["total"], few["total_capped"]) == (3, False)
