"""What the browser tests do through the API: enqueue, act as a worker, wait for state."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx


def enqueue(api: httpx.Client, queue: str, payload: Any = None, **fields: Any) -> str:
    body = {"queue": queue, "payload": {} if payload is None else payload, **fields}
    resp = api.post("/api/v1/enqueue", json=body)
    assert resp.status_code == 201, resp.text
    job_id: str = resp.json()["job_id"]
    return job_id


def enqueue_many(api: httpx.Client, queue: str, n: int) -> None:
    for start in range(0, n, 5000):
        jobs = [{"queue": queue, "payload": {"n": i}} for i in range(start, min(n, start + 5000))]
        resp = api.post("/api/v1/enqueue/batch", json={"jobs": jobs})
        assert resp.status_code == 201, resp.text


def fetch(api: httpx.Client, queue: str, worker: str = "w1") -> dict[str, Any]:
    resp = api.post("/api/v1/fetch", json={"queues": [queue], "worker_id": worker, "timeout": 0})
    assert resp.status_code == 200, resp.text
    job: dict[str, Any] = resp.json()
    job["id"] = job["job_id"]
    return job


def ack(api: httpx.Client, job: dict[str, Any], worker: str = "w1") -> None:
    resp = api.post(
        f"/api/v1/ack/{job['id']}", json={"worker_id": worker, "attempt": job["attempt"]}
    )
    assert resp.status_code == 200, resp.text


def fail(api: httpx.Client, job: dict[str, Any], error: str, worker: str = "w1") -> None:
    resp = api.post(
        f"/api/v1/fail/{job['id']}",
        json={"error": error, "worker_id": worker, "attempt": job["attempt"]},
    )
    assert resp.status_code == 200, resp.text


def heartbeat(
    api: httpx.Client, job: dict[str, Any], progress: dict[str, Any], worker: str = "w1"
) -> str:
    body = {
        "worker_id": worker,
        "jobs": {job["id"]: {"attempt": job["attempt"], "progress": progress}},
    }
    resp = api.post("/api/v1/heartbeat", json=body)
    assert resp.status_code == 200, resp.text
    status: str = resp.json()["jobs"][job["id"]]["status"]
    return status


def dead_job(api: httpx.Client, queue: str, error: str, payload: Any = None) -> str:
    """A job that failed once with `error` and has no retries left."""
    job_id = enqueue(api, queue, payload, max_retries=0)
    job = fetch(api, queue)
    assert job["id"] == job_id
    fail(api, job, error)
    return job_id


def job_state(api: httpx.Client, job_id: str) -> str:
    resp = api.get(f"/api/v1/jobs/{job_id}")
    assert resp.status_code == 200, resp.text
    state: str = resp.json()["state"]
    return state


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
