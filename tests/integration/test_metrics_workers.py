"""Prometheus metrics, the worker listing and cluster status over HTTP."""

from __future__ import annotations

import time
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.backends import TEST_BACKEND
from tests.integration.helpers import (
    ack,
    advance_clock,
    enqueue,
    fail,
    fetch,
    fetch_one,
    heartbeat,
    parse_ts,
)
from tests.serverproc import ServerProcess

Labels = frozenset[tuple[str, str]]


def scrape(api: httpx.Client) -> dict[tuple[str, Labels], float]:
    """Every sample of GET /metrics, keyed by (sample name, labels)."""
    resp = api.get("/metrics")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[tuple[str, Labels], float], name: str, **labels: str) -> float:
    """A sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


# --- metrics -----------------------------------------------------------------------------------


def test_queue_counts_and_totals_follow_the_work(api: httpx.Client, queue: str) -> None:
    before = scrape(api)
    assert value(before, "jobbie_jobs_enqueued_total", queue=queue) == 0

    ids = [enqueue(api, queue) for _ in range(3)]
    after_enqueue = scrape(api)
    assert value(after_enqueue, "jobbie_jobs", queue=queue, state="pending") == 3
    assert value(after_enqueue, "jobbie_jobs_enqueued_total", queue=queue) == 3
    assert value(after_enqueue, "jobbie_jobs_completed_total", queue=queue) == 0

    assert fetch_one(api, queue)["job_id"] == ids[0]
    assert ack(api, ids[0]).status_code == 200
    assert fetch_one(api, queue)["job_id"] == ids[1]
    assert fail(api, ids[1]).json()["status"] == "retrying"  # default 3 retries
    assert api.delete(f"/api/v1/jobs/{ids[1]}").status_code == 200
    doomed = enqueue(api, queue, max_retries=0)
    assert fetch_one(api, queue)["job_id"] == ids[2]  # FIFO: ids[2] is ahead of doomed
    assert fetch_one(api, queue)["job_id"] == doomed
    assert fail(api, doomed).json()["status"] == "dead"

    after = scrape(api)
    expected_states = {
        "pending": 0,
        "active": 1,
        "completed": 1,
        "dead": 1,
        "retrying": 0,
        "scheduled": 0,
        "cancelled": 0,
    }
    for state, n in expected_states.items():
        assert value(after, "jobbie_jobs", queue=queue, state=state) == n, state
    assert value(after, "jobbie_jobs_enqueued_total", queue=queue) == 4
    assert value(after, "jobbie_jobs_completed_total", queue=queue) == 1
    assert value(after, "jobbie_jobs_failed_total", queue=queue) == 2
    assert value(after, "jobbie_jobs_dead_total", queue=queue) == 1


def test_fetch_wait_histogram(api: httpx.Client, queue: str) -> None:
    name = "jobbie_fetch_wait_seconds"
    before = scrape(api)
    enqueue(api, queue)
    assert fetch(api, queue) is not None
    started = time.monotonic()
    assert fetch(api, queue, timeout="300ms") is None
    assert time.monotonic() - started >= 0.3
    after = scrape(api)
    assert value(after, f"{name}_count") == value(before, f"{name}_count") + 2
    assert value(after, f"{name}_sum") - value(before, f"{name}_sum") >= 0.3
    # the quick fetch landed in a small bucket, the 300 ms wait did not
    assert value(after, f"{name}_bucket", le="0.1") == value(before, f"{name}_bucket", le="0.1") + 1
    assert value(after, f"{name}_bucket", le="0.5") == value(before, f"{name}_bucket", le="0.5") + 2
    assert value(after, f"{name}_bucket", le="+Inf") == value(after, f"{name}_count")


def test_request_latency_histogram_by_route_template(api: httpx.Client, queue: str) -> None:
    name = "jobbie_http_request_duration_seconds_count"
    route = "/api/v1/jobs/{job_id}"
    before = scrape(api)
    job_id = enqueue(api, queue)
    for _ in range(2):
        assert api.get(f"/api/v1/jobs/{job_id}").status_code == 200
    assert api.get("/api/v1/jobs/job_01ARZ3NDEKTSV4RRFFQ69G5FAV").status_code == 404
    after = scrape(api)
    ok = {"method": "GET", "route": route, "status": "200"}
    missing = {"method": "GET", "route": route, "status": "404"}
    assert value(after, name, **ok) == value(before, name, **ok) + 2
    assert value(after, name, **missing) == value(before, name, **missing) + 1
    enq = {"method": "POST", "route": "/api/v1/enqueue", "status": "201"}
    assert value(after, name, **enq) >= value(before, name, **enq) + 1
    # labels carry the route template, never a raw path with an id in it
    assert not any(job_id in dict(labels).get("route", "") for _, labels in after)


# --- workers and cluster -----------------------------------------------------------------------


def _workers(api: httpx.Client) -> dict[str, dict[str, Any]]:
    resp = api.get("/api/v1/workers")
    assert resp.status_code == 200, resp.text
    return {w["id"]: w for w in resp.json()["workers"]}


def test_fetch_records_the_worker(api: httpx.Client, queue: str) -> None:
    worker_id = f"w-{queue}"
    other = f"{queue}.other"
    enqueue(api, queue)
    enqueue(api, queue)
    got = fetch_one(api, [queue, other], worker_id=worker_id, hostname="host-a", count=2)
    assert len(got["jobs"]) == 2

    worker = _workers(api)[worker_id]
    assert set(worker) == {"id", "hostname", "queues", "active_jobs", "last_seen", "started_at"}
    assert worker["hostname"] == "host-a"
    assert sorted(worker["queues"]) == sorted([queue, other])
    assert worker["active_jobs"] == 2
    assert parse_ts(worker["last_seen"]) >= parse_ts(worker["started_at"])
    assert abs(parse_ts(worker["last_seen"]).timestamp() - time.time()) < 30

    assert ack(api, got["jobs"][0]["job_id"]).status_code == 200
    assert _workers(api)[worker_id]["active_jobs"] == 1


def test_an_empty_fetch_records_the_worker(api: httpx.Client, queue: str) -> None:
    worker_id = f"idle-{queue}"
    assert fetch(api, queue, worker_id=worker_id, hostname="idle-host") is None
    worker = _workers(api)[worker_id]
    assert (worker["hostname"], worker["queues"], worker["active_jobs"]) == (
        "idle-host",
        [queue],
        0,
    )


def test_heartbeat_records_the_worker_and_refreshes_last_seen(
    clock_api: httpx.Client, queue: str
) -> None:
    api = clock_api
    worker_id = f"hb-{queue}"
    assert heartbeat(api, {}, worker_id=worker_id) == {}
    first = _workers(api)[worker_id]
    assert first["active_jobs"] == 0
    assert first["queues"] == []

    # A worker is recorded at most once a second; a heartbeat after that moves last_seen.
    advance_clock(api, 1.1)
    heartbeat(api, {}, worker_id=worker_id)
    later = _workers(api)[worker_id]
    assert parse_ts(later["last_seen"]) > parse_ts(first["last_seen"])
    assert later["started_at"] == first["started_at"]

    # a later fetch fills in the hostname and queues, keeping started_at
    assert fetch(api, queue, worker_id=worker_id, hostname="h2") is None
    worker = _workers(api)[worker_id]
    assert (worker["hostname"], worker["queues"]) == ("h2", [queue])
    assert worker["started_at"] == first["started_at"]


def test_cluster_status_single_node(api: httpx.Client, server: ServerProcess) -> None:
    resp = api.get("/api/v1/cluster/status")
    assert resp.status_code == 200, resp.text
    status = resp.json()
    # On PostgreSQL a lone server is a cluster of one (tests/integration/test_postgres_cluster.py).
    mode = "single" if TEST_BACKEND == "sqlite" else "cluster"
    assert (status["mode"], status["backend"]) == (mode, TEST_BACKEND)
    [node] = status["nodes"]
    assert set(node) == {"id", "address", "leader", "last_seen"}
    assert node["leader"] is True
    assert node["id"]
    assert node["address"] == f"127.0.0.1:{server.port}"
    parse_ts(node["last_seen"])
