"""Queue controls over HTTP: pause/resume, concurrency limits, throttles, the queue listing."""

from __future__ import annotations

import time

import httpx

from tests.integration.helpers import (
    LongPoll,
    ack,
    advance_clock,
    assert_still_waiting,
    enqueue,
    error_code,
    fetch,
    fetch_one,
    get_queue,
)

QUEUE_FIELDS = {
    "name",
    "paused",
    "draining",
    "max_concurrency",
    "throttle",
    "fairness",
    "key_concurrency",
    "key_throttle",
    "counts",
    "totals",
    "oldest_pending_age",
}
COUNT_FIELDS = {"scheduled", "pending", "active", "retrying", "completed", "dead", "cancelled"}


def test_queue_listing_shape(api: httpx.Client, queue: str) -> None:
    enqueue(api, queue)
    enqueue(api, queue, delay=60)
    q = get_queue(api, queue)
    assert set(q) >= QUEUE_FIELDS
    assert set(q["counts"]) == COUNT_FIELDS
    assert set(q["totals"]) == {"enqueued", "completed", "failed", "dead"}
    assert q["paused"] is False and q["draining"] is False
    assert q["max_concurrency"] is None and q["throttle"] is None
    assert q["counts"]["pending"] == 1 and q["counts"]["scheduled"] == 1
    assert q["totals"]["enqueued"] == 2
    assert isinstance(q["oldest_pending_age"], int | float)
    assert 0 <= q["oldest_pending_age"] < 30

    fetch_one(api, queue)
    q = get_queue(api, queue)
    assert q["oldest_pending_age"] is None
    assert q["counts"]["active"] == 1


def test_pause_and_resume(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue)
    resp = api.post(f"/api/v1/queues/{queue}/pause")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["name"] == queue and body["paused"] is True
    assert body["counts"]["pending"] == 1

    assert get_queue(api, queue)["paused"] is True
    start = time.monotonic()
    assert fetch(api, queue, timeout=0) is None
    assert time.monotonic() - start < 0.5
    # Another queue in the same fetch is still served.
    other = enqueue(api, f"{queue}.b")
    assert fetch_one(api, [queue, f"{queue}.b"])["job_id"] == other

    resp = api.post(f"/api/v1/queues/{queue}/resume")
    assert resp.status_code == 200, resp.text
    assert resp.json()["paused"] is False
    assert get_queue(api, queue)["paused"] is False
    assert fetch_one(api, queue)["job_id"] == job_id


def test_pause_before_first_job(api: httpx.Client, queue: str) -> None:
    resp = api.post(f"/api/v1/queues/{queue}/pause")
    assert resp.status_code == 200, resp.text
    assert resp.json()["paused"] is True
    enqueue(api, queue)
    assert fetch(api, queue) is None
    assert get_queue(api, queue)["counts"]["pending"] == 1


def test_resume_wakes_a_waiting_long_poll(api: httpx.Client, queue: str) -> None:
    api.post(f"/api/v1/queues/{queue}/pause").raise_for_status()
    job_id = enqueue(api, queue)
    with LongPoll(api) as poll:
        future = poll.start([queue], timeout=30)
        assert_still_waiting(future)
        resumed_at = time.monotonic()
        api.post(f"/api/v1/queues/{queue}/resume").raise_for_status()
        resp, returned_at = future.result(timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["job_id"] == job_id
    assert returned_at - resumed_at < 1.0


def test_concurrency_limit_one(api: httpx.Client, queue: str) -> None:
    resp = api.post(f"/api/v1/queues/{queue}/concurrency", json={"max": 1})
    assert resp.status_code == 200, resp.text
    assert resp.json()["max_concurrency"] == 1
    first = enqueue(api, queue)
    second = enqueue(api, queue)

    assert fetch_one(api, queue, worker_id="w1")["job_id"] == first
    assert fetch(api, queue, worker_id="w2") is None
    assert fetch(api, queue, worker_id="w2", count=5) is None
    assert get_queue(api, queue)["counts"] == {
        "scheduled": 0,
        "pending": 1,
        "active": 1,
        "retrying": 0,
        "completed": 0,
        "dead": 0,
        "cancelled": 0,
    }

    with LongPoll(api) as poll:
        future = poll.start([queue], timeout=30)
        assert_still_waiting(future)
        acked_at = time.monotonic()
        assert ack(api, first, worker_id="w1", attempt=1).status_code == 200
        resp, returned_at = future.result(timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["job_id"] == second
    assert returned_at - acked_at < 1.0


def test_concurrency_limit_caps_a_count_fetch(api: httpx.Client, queue: str) -> None:
    api.post(f"/api/v1/queues/{queue}/concurrency", json={"max": 2}).raise_for_status()
    for i in range(5):
        enqueue(api, queue, payload=i)
    answer = fetch_one(api, queue, count=10)
    assert [j["payload"] for j in answer["jobs"]] == [0, 1]
    assert fetch(api, queue, count=10) is None

    resp = api.post(f"/api/v1/queues/{queue}/concurrency", json={"max": None})
    assert resp.status_code == 200, resp.text
    assert resp.json()["max_concurrency"] is None
    answer = fetch_one(api, queue, count=10)
    assert [j["payload"] for j in answer["jobs"]] == [2, 3, 4]


def test_concurrency_body_validation(api: httpx.Client, queue: str) -> None:
    for body in ({}, {"max": 0}, {"max": -1}, {"max": "x"}):
        resp = api.post(f"/api/v1/queues/{queue}/concurrency", json=body)
        assert resp.status_code == 400, (body, resp.text)
        assert error_code(resp) == "VALIDATION_ERROR"


def test_throttle_limits_jobs_per_window(clock_api: httpx.Client, queue: str) -> None:
    api = clock_api
    resp = api.post(f"/api/v1/queues/{queue}/throttle", json={"rate": 2, "period": "10s"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["throttle"] == {"rate": 2, "period": 10}
    for i in range(10):
        enqueue(api, queue, payload=i)

    answer = fetch_one(api, queue, count=10)
    assert [j["payload"] for j in answer["jobs"]] == [0, 1]
    # Within the window nothing more is handed out (to this or any other worker).
    assert fetch(api, queue, worker_id="other", count=10) is None
    advance_clock(api, 5)
    assert fetch(api, queue, worker_id="other", count=10) is None

    # A long-poll gets the next jobs once the window has moved on by the server's clock (a
    # timer set for the reopening), long before its own timeout.
    advance_clock(api, 4.8)
    started_at = time.monotonic()
    answer = fetch_one(api, queue, count=10, timeout=10)
    later = [j["payload"] for j in answer["jobs"]]
    assert later == [2, 3]
    assert time.monotonic() - started_at < 5.0

    resp = api.delete(f"/api/v1/queues/{queue}/throttle")
    assert resp.status_code == 200, resp.text
    assert resp.json()["throttle"] is None
    rest = fetch_one(api, queue, count=10)["jobs"]
    assert [j["payload"] for j in rest] == list(range(4, 10))


def test_throttle_body_validation(api: httpx.Client, queue: str) -> None:
    bad = [
        {},
        {"rate": 0, "period": "1s"},
        {"rate": 2},
        {"rate": 2, "period": "10ms"},
        {"rate": 2, "period": "2d"},
    ]
    for body in bad:
        resp = api.post(f"/api/v1/queues/{queue}/throttle", json=body)
        assert resp.status_code == 400, (body, resp.text)
        assert error_code(resp) == "VALIDATION_ERROR"


def test_invalid_queue_name_in_path_is_400(api: httpx.Client) -> None:
    resp = api.post("/api/v1/queues/bad%20name!/pause")
    assert resp.status_code == 400
    assert error_code(resp) == "VALIDATION_ERROR"
