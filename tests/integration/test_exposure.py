"""Small leaks: a data dir whose path holds `#` or `?`, queue rows that outlive their use, and
a fetch answer that would grow past --max-response-bytes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from tests.serverproc import ServerProcess

MakeServer = Callable[..., ServerProcess]


def test_a_data_dir_with_uri_characters_reads_its_own_database(tmp_path: Path) -> None:
    odd = tmp_path / "odd#name?mode=rw"
    odd.mkdir()
    server = ServerProcess(odd / "data").start()
    try:
        with httpx.Client(base_url=server.url, timeout=10.0) as api:
            job_id = api.post("/api/v1/enqueue", json={"queue": "q"}).json()["job_id"]
            resp = api.get(f"/api/v1/jobs/{job_id}")  # served by the read-only connections
            assert resp.status_code == 200, resp.text
            assert resp.json()["state"] == "pending"
    finally:
        server.stop()


def queue_names(api: httpx.Client) -> set[str]:
    return {q["name"] for q in api.get("/api/v1/queues").json()["queues"]}


def advance(api: httpx.Client, seconds: float) -> dict[str, int]:
    resp = api.post("/_test/clock", json={"seconds": seconds})
    assert resp.status_code == 200, resp.text
    report: dict[str, int] = resp.json()["maintenance"]
    return report


def test_empty_default_queues_are_forgotten_after_their_retention(
    make_server: MakeServer,
) -> None:
    server = make_server("--test-clock", env={"JOBBIE_RETENTION_QUEUES": "1h"})
    with httpx.Client(base_url=server.url, timeout=10.0) as api:
        for name in ("gone", "busy", "paused", "limited"):
            job_id = api.post("/api/v1/enqueue", json={"queue": name}).json()["job_id"]
            if name != "busy":
                assert api.delete(f"/api/v1/jobs/{job_id}").status_code == 200
        api.post("/api/v1/queues/paused/pause")
        api.post("/api/v1/queues/limited/concurrency", json={"max": 2})
        advance(api, 0)  # the sweep notes which queues are idle
        assert advance(api, 1800)["queues_pruned"] == 0
        assert {"gone", "busy", "paused", "limited"} <= queue_names(api)
        # The server's own sweep may get there first, so judge by what is listed.
        advance(api, 1801)
        names = queue_names(api)
        assert "gone" not in names
        assert {"busy", "paused", "limited"} <= names
        # An enqueue brings it back, with fresh counts.
        assert api.post("/api/v1/enqueue", json={"queue": "gone"}).status_code == 201
        [gone] = [q for q in api.get("/api/v1/queues").json()["queues"] if q["name"] == "gone"]
        assert gone["counts"]["pending"] == 1


def test_fetch_answers_stop_growing_at_max_response_bytes(make_server: MakeServer) -> None:
    server = make_server("--max-response-bytes", "250000")
    payload = {"blob": "x" * 100_000}
    with httpx.Client(base_url=server.url, timeout=10.0) as api:
        for _ in range(5):
            api.post("/api/v1/enqueue", json={"queue": "big", "payload": payload})
        fetch = {"queues": ["big"], "worker_id": "w", "count": 5, "timeout": 0}
        first = api.post("/api/v1/fetch", json=fetch).json()["jobs"]
        assert len(first) == 2  # a third would pass 250,000 bytes
        assert len(api.post("/api/v1/fetch", json=fetch).json()["jobs"]) == 2
        # One job is always handed out, even over the cap.
        huge = {"blob": "y" * 300_000}
        api.post("/api/v1/enqueue", json={"queue": "huge", "payload": huge})
        fetch["queues"] = ["huge"]
        assert len(api.post("/api/v1/fetch", json=fetch).json()["jobs"]) == 1
