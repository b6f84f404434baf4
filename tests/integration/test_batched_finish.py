"""Fail batches and ack-and-fetch-next over HTTP: per-entry answers, fencing, the claim of
`next` sharing the ack's transaction, and queue limits applying to it as to a fetch."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.helpers import (
    ack,
    enqueue,
    error_code,
    fetch_one,
    get_job,
    get_queue,
)


def _fail_batch(api: httpx.Client, fails: list[dict[str, Any]], **body: Any) -> httpx.Response:
    return api.post("/api/v1/fail/batch", json={"fails": fails, **body})


def _lease(api: httpx.Client, queue: str, n: int, worker_id: str = "w1") -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = fetch_one(api, queue, worker_id=worker_id, count=n)["jobs"]
    assert len(jobs) == n
    return jobs


def test_fail_batch_answers_each_fail_in_order(api: httpx.Client, queue: str) -> None:
    retried = enqueue(api, queue, max_retries=2)
    dead = enqueue(api, queue, max_retries=0)
    fenced = enqueue(api, queue)
    by_id = {j["job_id"]: j for j in _lease(api, queue, 3)}
    fails: list[dict[str, Any]] = [
        {"job_id": retried, "attempt": 1, "error": "boom", "backtrace": "Traceback ..."},
        {"job_id": dead, "attempt": 1, "error": "fatal"},
        {"job_id": fenced, "attempt": 2, "error": "wrong attempt"},
        {"job_id": "job_01NOTAREALJOB0000000000000", "error": "unknown"},
        {"job_id": retried, "attempt": 1, "error": "twice"},
    ]
    resp = _fail_batch(api, fails, worker_id="w1")
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert [r["job_id"] for r in results] == [f["job_id"] for f in fails]
    assert results[0]["status"] == "retrying" and results[0]["attempts_remaining"] == 2
    assert results[0]["next_attempt_at"] is not None and "error" not in results[0]
    assert results[1] == {
        "job_id": dead,
        "status": "dead",
        "next_attempt_at": None,
        "attempts_remaining": 0,
    }
    assert results[2]["code"] == "LEASE_LOST" and "status" not in results[2]
    assert results[3]["code"] == "NOT_FOUND"
    assert results[4]["code"] == "LEASE_LOST"  # the first entry already failed it

    job = get_job(api, retried)
    assert job["state"] == "retrying"
    assert [e["error"] for e in job["errors"]] == ["boom"]
    assert job["errors"][0]["backtrace"] == "Traceback ..."
    assert get_job(api, dead)["state"] == "dead"
    assert get_job(api, fenced)["state"] == "active"  # its fail was refused alone
    assert by_id[fenced]["attempt"] == 1


def test_fail_batch_other_worker_is_lease_lost(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue)
    _lease(api, queue, 1, worker_id="owner")
    resp = _fail_batch(api, [{"job_id": job_id, "error": "x"}], worker_id="intruder")
    assert resp.json()["results"][0]["code"] == "LEASE_LOST"
    assert get_job(api, job_id)["state"] == "active"


@pytest.mark.parametrize(
    "body",
    [
        {"fails": []},
        {"fails": [{"job_id": "j", "error": "e"}] * 1001},
        {"fails": [{"job_id": "j"}]},
        {"fails": [{"job_id": "j", "error": "e", "worker_id": "w"}]},  # worker_id is top-level
    ],
)
def test_fail_batch_bad_input_is_400(api: httpx.Client, body: dict[str, Any]) -> None:
    resp = api.post("/api/v1/fail/batch", json=body)
    assert resp.status_code == 400, resp.text
    assert error_code(resp) == "VALIDATION_ERROR"


def test_ack_with_next_leases_the_next_jobs(api: httpx.Client, queue: str) -> None:
    ids = [enqueue(api, queue, payload={"n": i}) for i in range(4)]
    first = fetch_one(api, queue, worker_id="w1")
    assert first["job_id"] == ids[0]
    resp = ack(
        api,
        ids[0],
        result={"ok": True},
        worker_id="w1",
        attempt=1,
        next={"queues": [queue], "count": 2, "lease_duration": 90},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "completed"
    assert [j["job_id"] for j in body["next"]] == ids[1:3]
    assert [j["payload"] for j in body["next"]] == [{"n": 1}, {"n": 2}]
    assert {j["lease_duration"] for j in body["next"]} == {90}
    leased = get_job(api, ids[1])
    assert leased["state"] == "active" and leased["worker"]["id"] == "w1"
    assert get_job(api, ids[0])["result"] == {"ok": True}

    # The last one, then nothing is ready: an empty list at once, never a wait.
    resp = ack(api, ids[1], worker_id="w1", attempt=1, next={"queues": [queue], "count": 5})
    assert [j["job_id"] for j in resp.json()["next"]] == [ids[3]]
    resp = ack(api, ids[2], worker_id="w1", attempt=1, next={"queues": [queue]})
    assert resp.json() == {"status": "completed", "next": []}
    # Without `next` the answer keeps its old shape.
    assert ack(api, ids[3], worker_id="w1", attempt=1).json() == {"status": "completed"}


@pytest.mark.parametrize("wrong", ["attempt", "worker", "unknown"])
def test_a_refused_ack_claims_nothing(api: httpx.Client, queue: str, wrong: str) -> None:
    job_id = enqueue(api, queue)
    waiting = enqueue(api, queue)
    fetch_one(api, queue, worker_id="w1")
    next_ = {"queues": [queue], "count": 5}
    if wrong == "attempt":
        resp = ack(api, job_id, worker_id="w1", attempt=2, next=next_)
        assert (resp.status_code, error_code(resp)) == (409, "LEASE_LOST")
    elif wrong == "worker":
        resp = ack(api, job_id, worker_id="w2", attempt=1, next=next_)
        assert (resp.status_code, error_code(resp)) == (409, "LEASE_LOST")
    else:
        resp = ack(api, "job_01NOTAREALJOB0000000000000", worker_id="w1", next=next_)
        assert (resp.status_code, error_code(resp)) == (404, "NOT_FOUND")
    assert get_job(api, waiting)["state"] == "pending"
    assert get_queue(api, queue)["counts"]["active"] == 1


def test_next_needs_a_worker_id(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue)
    fetch_one(api, queue, worker_id="w1")
    resp = ack(api, job_id, next={"queues": [queue]})
    assert (resp.status_code, error_code(resp)) == (400, "VALIDATION_ERROR")
    resp = api.post(
        "/api/v1/ack/batch", json={"acks": [{"job_id": job_id}], "next": {"queues": [queue]}}
    )
    assert (resp.status_code, error_code(resp)) == (400, "VALIDATION_ERROR")
    bad: dict[str, Any]
    for bad in ({"queues": []}, {"queues": [queue], "count": 0}, {"queues": ["bad name"]}):
        resp = ack(api, job_id, worker_id="w1", next=bad)
        assert resp.status_code == 400, resp.text
    assert get_job(api, job_id)["state"] == "active"  # a refused request changes nothing


def test_ack_batch_with_next_claims_whatever_the_results(api: httpx.Client, queue: str) -> None:
    ids = [enqueue(api, queue) for i in range(5)]
    leased = _lease(api, queue, 2, worker_id="w1")
    acks = [
        {"job_id": leased[0]["job_id"], "result": 1, "worker_id": "w1", "attempt": 1},
        {"job_id": leased[1]["job_id"], "worker_id": "w1", "attempt": 7},  # lost
    ]
    resp = api.post(
        "/api/v1/ack/batch",
        json={"acks": acks, "worker_id": "w1", "next": {"queues": [queue], "count": 2}},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["results"][0] == {
        "job_id": ids[0],
        "status": "completed",
        "error": None,
        "code": None,
    }
    assert body["results"][1]["code"] == "LEASE_LOST"
    assert [j["job_id"] for j in body["next"]] == ids[2:4]
    assert all(get_job(api, j)["worker"]["id"] == "w1" for j in ids[2:4])
    plain = api.post("/api/v1/ack/batch", json={"acks": [{"job_id": ids[2], "worker_id": "w1"}]})
    assert set(plain.json()) == {"results"}


def test_next_honours_pause_concurrency_and_throttle(api: httpx.Client, queue: str) -> None:
    ids = [enqueue(api, queue) for _ in range(6)]
    assert api.post(f"/api/v1/queues/{queue}/concurrency", json={"max": 2}).status_code == 200
    _lease(api, queue, 2)
    # The ack frees one slot in the same transaction, so exactly one more fits.
    resp = ack(api, ids[0], worker_id="w1", attempt=1, next={"queues": [queue], "count": 5})
    assert [j["job_id"] for j in resp.json()["next"]] == [ids[2]]

    assert api.post(f"/api/v1/queues/{queue}/pause").status_code == 200
    resp = ack(api, ids[1], worker_id="w1", attempt=1, next={"queues": [queue], "count": 5})
    assert resp.json() == {"status": "completed", "next": []}
    assert api.post(f"/api/v1/queues/{queue}/resume").status_code == 200

    assert api.post(f"/api/v1/queues/{queue}/concurrency", json={"max": None}).status_code == 200
    throttle = {"rate": 1, "period": "1h"}
    assert api.post(f"/api/v1/queues/{queue}/throttle", json=throttle).status_code == 200
    resp = ack(api, ids[2], worker_id="w1", attempt=1, next={"queues": [queue], "count": 5})
    assert [j["job_id"] for j in resp.json()["next"]] == [ids[3]]  # the window's one job
    resp = ack(api, ids[3], worker_id="w1", attempt=1, next={"queues": [queue], "count": 5})
    assert resp.json()["next"] == []
    assert get_queue(api, queue)["counts"]["pending"] == 2
