"""Batch enqueue with callbacks, and batch acks with partial success."""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.helpers import (
    ack,
    enqueue,
    error_code,
    fail,
    fetch,
    fetch_one,
    get_job,
    get_queue,
)


def enqueue_batch(api: httpx.Client, jobs: list[dict[str, Any]], **batch: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"jobs": jobs}
    if batch:
        body["batch"] = batch
    resp = api.post("/api/v1/enqueue/batch", json=body)
    assert resp.status_code == 201, resp.text
    answer: dict[str, Any] = resp.json()
    return answer


def test_batch_enqueue_without_batch_object(api: httpx.Client, queue: str) -> None:
    answer = enqueue_batch(
        api,
        [
            {"queue": queue, "payload": 0},
            {"queue": queue, "payload": 1, "priority": "high"},
            {"queue": f"{queue}.b", "payload": 2, "delay": 60},
        ],
    )
    assert answer["batch_id"] is None
    ids = answer["job_ids"]
    assert len(ids) == 3 and len(set(ids)) == 3
    jobs = [get_job(api, job_id) for job_id in ids]
    assert [j["payload"] for j in jobs] == [0, 1, 2]
    assert [j["state"] for j in jobs] == ["pending", "pending", "scheduled"]
    assert [j["batch_id"] for j in jobs] == [None, None, None]
    assert jobs[1]["priority"] == "high"
    assert jobs[2]["queue"] == f"{queue}.b"
    assert get_queue(api, queue)["totals"]["enqueued"] == 2


def test_batch_with_callback_after_all_jobs_finish(api: httpx.Client, queue: str) -> None:
    callback_queue = f"{queue}.cb"
    answer = enqueue_batch(
        api,
        [
            {"queue": queue, "payload": "a"},
            {"queue": queue, "payload": "b"},
            {"queue": queue, "payload": "c", "max_retries": 0},
        ],
        callback_queue=callback_queue,
        callback_payload={"report": "nightly"},
    )
    batch_id = answer["batch_id"]
    assert batch_id.startswith("batch_")
    a, b, c = answer["job_ids"]
    assert all(get_job(api, job_id)["batch_id"] == batch_id for job_id in (a, b, c))

    assert fetch_one(api, queue)["job_id"] == a
    assert ack(api, a, result=1).status_code == 200
    assert fetch_one(api, queue)["job_id"] == b
    assert ack(api, b, result=2).status_code == 200
    # One job still running: no callback yet.
    assert fetch(api, callback_queue) is None

    assert fetch_one(api, queue)["job_id"] == c
    assert fail(api, c, "bad input").json()["status"] == "dead"

    callback = fetch_one(api, callback_queue, timeout=5)
    assert callback["payload"] == {
        "batch_id": batch_id,
        "total": 3,
        "succeeded": 2,
        "failed": 1,
        "callback_payload": {"report": "nightly"},
    }
    assert callback["tags"] == {"batch_id": batch_id}
    assert callback["max_retries"] == 3
    assert callback["priority"] == "normal"
    assert callback["queue"] == callback_queue
    # Exactly one callback.
    assert fetch(api, callback_queue) is None
    assert get_queue(api, callback_queue)["totals"]["enqueued"] == 1


def test_batch_cancelled_job_counts_as_failed(api: httpx.Client, queue: str) -> None:
    callback_queue = f"{queue}.cb"
    answer = enqueue_batch(
        api,
        [{"queue": queue, "payload": 1}, {"queue": queue, "payload": 2, "delay": 60}],
        callback_queue=callback_queue,
    )
    first, second = answer["job_ids"]
    assert api.post(f"/api/v1/jobs/{second}/cancel").json() == {"status": "cancelled"}
    assert fetch(api, callback_queue) is None
    assert fetch_one(api, queue)["job_id"] == first
    assert ack(api, first).status_code == 200

    callback = fetch_one(api, callback_queue, timeout=5)
    payload = callback["payload"]
    assert payload["batch_id"] == answer["batch_id"]
    assert (payload["total"], payload["succeeded"], payload["failed"]) == (2, 1, 1)
    assert payload["callback_payload"] is None


def test_batch_unique_duplicate_is_not_part_of_the_batch(api: httpx.Client, queue: str) -> None:
    callback_queue = f"{queue}.cb"
    existing = enqueue(api, queue, unique_key="report-1")
    answer = enqueue_batch(
        api,
        [{"queue": queue, "unique_key": "report-1"}, {"queue": queue, "payload": "new"}],
        callback_queue=callback_queue,
    )
    dup, new = answer["job_ids"]
    assert dup == existing
    assert get_job(api, existing)["batch_id"] is None

    answer_jobs = fetch_one(api, queue, count=10)["jobs"]
    assert [j["job_id"] for j in answer_jobs] == [existing, new]
    assert ack(api, new).status_code == 200
    callback = fetch_one(api, callback_queue, timeout=5)
    assert callback["payload"]["total"] == 1
    assert callback["payload"]["succeeded"] == 1
    assert callback["payload"]["failed"] == 0
    assert get_job(api, existing)["state"] == "active"


def test_invalid_batch_job_inserts_nothing(api: httpx.Client, queue: str) -> None:
    resp = api.post(
        "/api/v1/enqueue/batch",
        json={
            "jobs": [
                {"queue": queue, "payload": 1},
                {"queue": queue, "priority": "urgent"},
            ]
        },
    )
    assert resp.status_code == 400
    assert error_code(resp) == "VALIDATION_ERROR"
    assert "1" in resp.json()["error"]
    assert fetch(api, queue) is None

    resp = api.post("/api/v1/enqueue/batch", json={"jobs": []})
    assert resp.status_code == 400
    assert error_code(resp) == "VALIDATION_ERROR"


def test_ack_batch_partial_success_in_request_order(api: httpx.Client, queue: str) -> None:
    ids = [enqueue(api, queue, payload=i) for i in range(3)]
    not_fetched = enqueue(api, queue, payload=3)
    fetched = fetch_one(api, queue, worker_id="w1", count=3)["jobs"]
    assert [j["job_id"] for j in fetched] == ids
    unknown = "job_01ARZ3NDEKTSV4RRFFQ69G5FAV"

    resp = api.post(
        "/api/v1/ack/batch",
        json={
            "acks": [
                {"job_id": ids[2], "result": "two", "worker_id": "w1", "attempt": 1},
                {"job_id": unknown, "result": None},
                {"job_id": ids[0], "result": "zero", "worker_id": "someone-else", "attempt": 1},
                {"job_id": not_fetched, "result": None},
                {"job_id": ids[1], "result": {"n": 1}},
            ]
        },
    )
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert [r["job_id"] for r in results] == [ids[2], unknown, ids[0], not_fetched, ids[1]]
    assert results[0]["status"] == "completed"
    assert results[1]["code"] == "NOT_FOUND" and results[1]["error"]
    assert results[2]["code"] == "LEASE_LOST" and results[2]["error"]
    assert results[3]["code"] == "CONFLICT" and results[3]["error"]
    assert results[4]["status"] == "completed"

    assert get_job(api, ids[2])["result"] == "two"
    assert get_job(api, ids[1])["result"] == {"n": 1}
    zero = get_job(api, ids[0])
    assert zero["state"] == "active" and zero["result"] is None
    assert get_job(api, not_fetched)["state"] == "pending"
    assert get_queue(api, queue)["totals"]["completed"] == 2


def test_ack_batch_empty_is_400(api: httpx.Client) -> None:
    resp = api.post("/api/v1/ack/batch", json={"acks": []})
    assert resp.status_code == 400
    assert error_code(resp) == "VALIDATION_ERROR"


def test_ack_batch_mixes_plain_unique_batched_and_cancelled_jobs(
    api: httpx.Client, queue: str
) -> None:
    plain = enqueue(api, queue, payload=1)
    unique = enqueue(api, queue, payload=2, unique_key="u1")
    made = enqueue_batch(api, [{"queue": queue, "payload": 3}], callback_queue=f"{queue}.cb")
    batched = made["job_ids"][0]
    doomed = enqueue(api, queue, payload=4)
    leases = {j["job_id"]: j for j in fetch_one(api, queue, count=10)["jobs"]}
    assert set(leases) == {plain, unique, batched, doomed}
    assert api.post(f"/api/v1/jobs/{doomed}/cancel").json()["status"] == "cancelling"

    def item(job_id: str) -> dict[str, Any]:
        return {"job_id": job_id, "result": {"id": job_id}, "worker_id": "w1",
                "attempt": leases[job_id]["attempt"]}  # fmt: skip

    order = [plain, unique, batched, doomed, plain]
    resp = api.post("/api/v1/ack/batch", json={"acks": [item(j) for j in order]})
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert [r["job_id"] for r in results] == order
    assert [r["status"] for r in results[:4]] == [
        "completed",
        "completed",
        "completed",
        "cancelled",
    ]
    assert results[4]["code"] == "LEASE_LOST"  # the same job twice: the second finds it done
    assert get_job(api, plain)["result"] == {"id": plain}
    # the unique lock is released and the batch callback fired
    again = api.post("/api/v1/enqueue", json={"queue": queue, "unique_key": "u1"}).json()
    assert again["unique_existing"] is False
    batch = api.get(f"/api/v1/batches/{made['batch_id']}").json()
    assert (batch["state"], batch["succeeded"]) == ("completed", 1)
    assert get_queue(api, queue)["totals"]["completed"] == 3
