"""Job lifecycle over HTTP: enqueue, fetch, ack, priorities, uniqueness, schedules, cancel."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.integration.helpers import (
    LongPoll,
    ack,
    advance_clock,
    assert_still_waiting,
    enqueue,
    error_code,
    event_types,
    fail,
    fetch,
    fetch_one,
    get_job,
    get_queue,
    heartbeat,
    parse_ts,
    rfc3339,
    server_now,
    ts_epoch,
)

JOB_FIELDS = {
    "id",
    "queue",
    "state",
    "payload",
    "priority",
    "attempt",
    "max_retries",
    "retry_backoff",
    "retry_base_delay",
    "retry_max_delay",
    "unique_key",
    "unique_period",
    "batch_id",
    "tags",
    "key",
    "progress",
    "checkpoint",
    "result",
    "last_error",
    "errors",
    "worker",
    "created_at",
    "scheduled_at",
    "started_at",
    "completed_at",
    "failed_at",
    "expire_at",
    "lease_expires_at",
    "cancel_requested",
    "events",
}
FETCH_FIELDS = {
    "job_id",
    "queue",
    "payload",
    "attempt",
    "max_retries",
    "lease_duration",
    "checkpoint",
    "tags",
    "key",
    "priority",
    "created_at",
}


def test_full_lifecycle_enqueue_fetch_ack(api: httpx.Client, queue: str) -> None:
    payload = {"to": "a@example.com", "n": [1, 2, 3]}
    resp = api.post(
        "/api/v1/enqueue", json={"queue": queue, "payload": payload, "tags": {"team": "x"}}
    )
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["status"] == "pending"
    assert created["unique_existing"] is False
    job_id = created["job_id"]
    assert job_id.startswith("job_")

    job = get_job(api, job_id)
    assert set(job) >= JOB_FIELDS
    assert job["state"] == "pending"
    assert job["attempt"] == 0
    assert job["payload"] == payload
    assert job["tags"] == {"team": "x"}
    assert job["priority"] == "normal"
    assert job["max_retries"] == 3
    assert job["started_at"] is None and job["result"] is None and job["worker"] is None
    parse_ts(job["created_at"])

    q = get_queue(api, queue)
    assert q["counts"]["pending"] == 1
    assert q["totals"]["enqueued"] == 1

    fetched = fetch_one(api, queue, worker_id="w-life", hostname="host-a", lease_duration=30)
    assert set(fetched) >= FETCH_FIELDS
    assert fetched["job_id"] == job_id
    assert fetched["queue"] == queue
    assert fetched["payload"] == payload
    assert fetched["attempt"] == 1
    assert fetched["max_retries"] == 3
    assert fetched["lease_duration"] == 30
    assert fetched["checkpoint"] is None
    assert fetched["tags"] == {"team": "x"}
    assert fetched["priority"] == "normal"
    assert fetched["created_at"] == job["created_at"]

    job = get_job(api, job_id)
    assert job["state"] == "active"
    assert job["attempt"] == 1
    assert job["worker"] == {"id": "w-life", "hostname": "host-a"}
    started = ts_epoch(job["started_at"])
    lease_end = ts_epoch(job["lease_expires_at"])
    assert 29 <= lease_end - started <= 31
    q = get_queue(api, queue)
    assert q["counts"]["active"] == 1 and q["counts"]["pending"] == 0

    resp = ack(api, job_id, result={"sent": True}, worker_id="w-life", attempt=1)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"status": "completed"}

    job = get_job(api, job_id)
    assert job["state"] == "completed"
    assert job["result"] == {"sent": True}
    assert ts_epoch(job["completed_at"]) >= started
    assert job["errors"] == []
    types = event_types(job)
    assert types.index("enqueued") < types.index("started") < types.index("completed")

    q = get_queue(api, queue)
    assert q["counts"]["completed"] == 1
    assert q["counts"]["active"] == 0 and q["counts"]["pending"] == 0
    assert q["totals"] == {"enqueued": 1, "completed": 1, "failed": 0, "dead": 0}
    assert fetch(api, queue) is None


def test_timestamps_are_rfc3339_with_ms_and_z(api: httpx.Client, queue: str) -> None:
    before = time.time()
    job_id = enqueue(api, queue, delay=60)
    job = get_job(api, job_id)
    created = ts_epoch(job["created_at"])
    assert before - 1 <= created <= time.time() + 1
    assert 58 <= ts_epoch(job["scheduled_at"]) - created <= 62
    for event in job["events"]:
        parse_ts(event["at"])


def test_unknown_job_is_404(api: httpx.Client) -> None:
    resp = api.get("/api/v1/jobs/job_01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert resp.status_code == 404
    assert error_code(resp) == "NOT_FOUND"
    resp = ack(api, "job_01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert resp.status_code == 404
    assert error_code(resp) == "NOT_FOUND"


def test_fetch_timeout_zero_answers_204_at_once(api: httpx.Client, queue: str) -> None:
    start = time.monotonic()
    resp = api.post("/api/v1/fetch", json={"queues": [queue], "worker_id": "w", "timeout": 0})
    assert resp.status_code == 204
    assert resp.content == b""
    assert time.monotonic() - start < 0.5


def test_fetch_short_timeout_waits_then_204(api: httpx.Client, queue: str) -> None:
    start = time.monotonic()
    assert fetch(api, queue, timeout="300ms") is None
    elapsed = time.monotonic() - start
    assert 0.25 <= elapsed < 2.0


def test_fetch_count_always_answers_a_list(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue, payload=1)
    answer = fetch_one(api, queue, count=1)
    assert list(answer) == ["jobs"]
    assert [j["job_id"] for j in answer["jobs"]] == [job_id]
    assert set(answer["jobs"][0]) >= FETCH_FIELDS

    ids = [enqueue(api, queue, payload=i) for i in range(3)]
    answer = fetch_one(api, queue, count=10)
    assert [j["job_id"] for j in answer["jobs"]] == ids
    assert all(j["attempt"] == 1 for j in answer["jobs"])
    assert fetch(api, queue, count=5) is None


def test_fetch_count_returns_at_most_count(api: httpx.Client, queue: str) -> None:
    ids = [enqueue(api, queue, payload=i) for i in range(5)]
    first = fetch_one(api, queue, count=2)
    second = fetch_one(api, queue, count=2)
    third = fetch_one(api, queue, count=2)
    got = [j["job_id"] for a in (first, second, third) for j in a["jobs"]]
    assert [len(a["jobs"]) for a in (first, second, third)] == [2, 2, 1]
    assert got == ids


def test_long_poll_wakes_promptly_on_enqueue(api: httpx.Client, queue: str) -> None:
    with LongPoll(api) as poll:
        future = poll.start([queue], timeout=30)
        assert_still_waiting(future)
        enqueued_at = time.monotonic()
        job_id = enqueue(api, queue, payload="wake")
        resp, returned_at = future.result(timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["job_id"] == job_id
    assert returned_at - enqueued_at < 1.0


def test_long_poll_with_count_wakes_and_answers_a_list(api: httpx.Client, queue: str) -> None:
    with LongPoll(api) as poll:
        future = poll.start([queue], timeout=30, count=5)
        assert_still_waiting(future)
        enqueued_at = time.monotonic()
        job_id = enqueue(api, queue)
        resp, returned_at = future.result(timeout=10)
    assert resp.status_code == 200, resp.text
    assert [j["job_id"] for j in resp.json()["jobs"]] == [job_id]
    assert returned_at - enqueued_at < 1.0


def test_priority_order_across_two_queues(api: httpx.Client, queue: str) -> None:
    other = f"{queue}.b"
    normal1 = enqueue(api, queue, priority="normal")
    high1 = enqueue(api, queue, priority="high")
    critical1 = enqueue(api, other, priority="critical")
    normal2 = enqueue(api, other)
    high2 = enqueue(api, other, priority="high")
    critical2 = enqueue(api, queue, priority=0)
    expected = [critical1, critical2, high1, high2, normal1, normal2]

    got = []
    for _ in expected:
        job = fetch_one(api, [queue, other])
        got.append(job["job_id"])
    assert got == expected
    assert fetch(api, [queue, other]) is None


def test_priority_order_within_one_count_fetch(api: httpx.Client, queue: str) -> None:
    other = f"{queue}.b"
    normal1 = enqueue(api, other)
    critical1 = enqueue(api, queue, priority="critical")
    normal2 = enqueue(api, queue)
    high1 = enqueue(api, other, priority="high")
    critical2 = enqueue(api, other, priority="critical")
    answer = fetch_one(api, [queue, other], count=10)
    jobs = answer["jobs"]
    assert [j["job_id"] for j in jobs] == [critical1, critical2, high1, normal1, normal2]
    assert [j["priority"] for j in jobs] == ["critical", "critical", "high", "normal", "normal"]
    assert [j["queue"] for j in jobs] == [queue, other, other, other, queue]


def test_fifo_within_priority_for_many_jobs(api: httpx.Client, queue: str) -> None:
    resp = api.post(
        "/api/v1/enqueue/batch", json={"jobs": [{"queue": queue, "payload": i} for i in range(50)]}
    )
    assert resp.status_code == 201, resp.text
    ids = resp.json()["job_ids"]
    ids += [enqueue(api, queue, payload=50 + i) for i in range(10)]
    got: list[str] = []
    while (answer := fetch(api, queue, count=7)) is not None:
        got += [j["job_id"] for j in answer["jobs"]]
    assert got == ids


def test_concurrent_workers_never_share_a_job(api: httpx.Client, queue: str) -> None:
    resp = api.post(
        "/api/v1/enqueue/batch", json={"jobs": [{"queue": queue, "payload": i} for i in range(200)]}
    )
    assert resp.status_code == 201, resp.text
    ids = set(resp.json()["job_ids"])
    base_url = str(api.base_url)

    def drain(worker: int) -> list[str]:
        got: list[str] = []
        with httpx.Client(base_url=base_url, timeout=30) as client:
            while (answer := fetch(client, queue, worker_id=f"w{worker}", count=3)) is not None:
                got += [j["job_id"] for j in answer["jobs"]]
        return got

    with ThreadPoolExecutor(max_workers=8) as pool:
        handed = [job_id for part in pool.map(drain, range(8)) for job_id in part]
    assert len(handed) == len(ids)
    assert set(handed) == ids
    assert get_queue(api, queue)["counts"]["active"] == 200


def test_unique_key_duplicate_returns_existing_job(api: httpx.Client, queue: str) -> None:
    first = api.post("/api/v1/enqueue", json={"queue": queue, "unique_key": "u1", "payload": 1})
    assert first.status_code == 201, first.text
    job_id = first.json()["job_id"]

    dup = api.post("/api/v1/enqueue", json={"queue": queue, "unique_key": "u1", "payload": 2})
    assert dup.status_code == 200, dup.text
    assert dup.json() == {"job_id": job_id, "status": "pending", "unique_existing": True}
    assert get_queue(api, queue)["counts"]["pending"] == 1
    assert get_job(api, job_id)["payload"] == 1

    # Another key, or the same key on another queue, is a new job.
    other_key = enqueue(api, queue, unique_key="u2")
    other_queue = enqueue(api, f"{queue}.b", unique_key="u1")
    assert len({job_id, other_key, other_queue}) == 3

    # While the holder is active the lock is still held.
    fetched = fetch_one(api, queue)
    assert fetched["job_id"] == job_id
    dup = api.post("/api/v1/enqueue", json={"queue": queue, "unique_key": "u1"})
    assert dup.status_code == 200
    assert dup.json() == {"job_id": job_id, "status": "active", "unique_existing": True}

    # Completing the job releases the lock: the next enqueue is a new job.
    assert ack(api, job_id).status_code == 200
    again = api.post("/api/v1/enqueue", json={"queue": queue, "unique_key": "u1"})
    assert again.status_code == 201, again.text
    assert again.json()["unique_existing"] is False
    assert again.json()["job_id"] != job_id


def test_unique_lock_released_by_cancel_and_dead(api: httpx.Client, queue: str) -> None:
    cancelled = enqueue(api, queue, unique_key="c")
    assert api.post(f"/api/v1/jobs/{cancelled}/cancel").json() == {"status": "cancelled"}
    fresh = enqueue(api, queue, unique_key="c")
    assert fresh != cancelled

    dead = enqueue(api, f"{queue}.d", unique_key="d", max_retries=0)
    fetch_one(api, f"{queue}.d")
    assert fail(api, dead).json()["status"] == "dead"
    assert enqueue(api, f"{queue}.d", unique_key="d") != dead


def test_scheduled_at_in_future_is_promoted(clock_api: httpx.Client, queue: str) -> None:
    api = clock_api
    due = server_now(api) + 60
    resp = api.post("/api/v1/enqueue", json={"queue": queue, "scheduled_at": rfc3339(due)})
    assert resp.status_code == 201, resp.text
    assert resp.json()["status"] == "scheduled"
    job_id = resp.json()["job_id"]
    job = get_job(api, job_id)
    assert job["state"] == "scheduled"
    assert abs(ts_epoch(job["scheduled_at"]) - due) < 0.01
    assert fetch(api, queue) is None
    assert get_queue(api, queue)["counts"]["scheduled"] == 1

    # A waiting long-poll is woken by the promotion once the time has come.
    with LongPoll(api) as poll:
        future = poll.start([queue], timeout=30)
        advance_clock(api, 30)
        assert_still_waiting(future)
        moved_at = time.monotonic()
        now = advance_clock(api, 31) / 1000
        resp, returned_at = future.result(timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["job_id"] == job_id
    assert now >= due
    assert returned_at - moved_at < 3.0  # woken by the move, not by its 30 s timeout
    types = event_types(get_job(api, job_id))
    assert "promoted" in types


def test_delay_schedules_the_job(clock_api: httpx.Client, queue: str) -> None:
    api = clock_api
    before = server_now(api)
    resp = api.post("/api/v1/enqueue", json={"queue": queue, "delay": "500ms"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["status"] == "scheduled"
    job_id = resp.json()["job_id"]
    scheduled = ts_epoch(get_job(api, job_id)["scheduled_at"])
    assert before + 0.5 - 0.01 <= scheduled <= server_now(api) + 0.5 + 0.01
    assert fetch(api, queue) is None
    now = advance_clock(api, 0.6) / 1000
    job = get_job(api, job_id)
    assert job["state"] == "pending"
    assert now >= scheduled
    assert job["attempt"] == 0
    assert fetch_one(api, queue)["job_id"] == job_id


def test_past_scheduled_at_is_pending_at_once(api: httpx.Client, queue: str) -> None:
    resp = api.post(
        "/api/v1/enqueue", json={"queue": queue, "scheduled_at": rfc3339(time.time() - 3600)}
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["status"] == "pending"
    assert fetch_one(api, queue)["job_id"] == resp.json()["job_id"]


def test_scheduled_at_and_delay_together_is_400(api: httpx.Client, queue: str) -> None:
    resp = api.post(
        "/api/v1/enqueue",
        json={"queue": queue, "scheduled_at": rfc3339(time.time() + 60), "delay": 5},
    )
    assert resp.status_code == 400
    assert error_code(resp) == "VALIDATION_ERROR"
    assert fetch(api, queue) is None


def test_cancel_waiting_job(api: httpx.Client, queue: str) -> None:
    pending = enqueue(api, queue)
    scheduled = enqueue(api, queue, delay=60)
    for job_id in (pending, scheduled):
        resp = api.post(f"/api/v1/jobs/{job_id}/cancel")
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"status": "cancelled"}
        assert get_job(api, job_id)["state"] == "cancelled"
    assert fetch(api, queue) is None
    counts = get_queue(api, queue)["counts"]
    assert counts["cancelled"] == 2
    assert counts["pending"] == 0 and counts["scheduled"] == 0

    # A finished job cannot be cancelled.
    resp = api.post(f"/api/v1/jobs/{pending}/cancel")
    assert resp.status_code == 409
    assert error_code(resp) == "CONFLICT"


def test_cancel_retrying_job(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue, retry_backoff="fixed", retry_base_delay=60)
    fetch_one(api, queue)
    assert fail(api, job_id).json()["status"] == "retrying"
    resp = api.post(f"/api/v1/jobs/{job_id}/cancel")
    assert resp.json() == {"status": "cancelled"}
    assert get_job(api, job_id)["state"] == "cancelled"


def test_cancel_active_job_through_heartbeat_and_ack(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue)
    fetched = fetch_one(api, queue, worker_id="w-c")
    assert heartbeat(api, {job_id: {"attempt": 1}}, worker_id="w-c") == {job_id: "ok"}

    resp = api.post(f"/api/v1/jobs/{job_id}/cancel")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"status": "cancelling"}
    job = get_job(api, job_id)
    assert job["state"] == "active"
    assert job["cancel_requested"] is True

    assert heartbeat(api, {job_id: {"attempt": fetched["attempt"]}}, worker_id="w-c") == {
        job_id: "cancel"
    }
    resp = ack(api, job_id, worker_id="w-c", attempt=1, result="partial")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"status": "cancelled"}
    job = get_job(api, job_id)
    assert job["state"] == "cancelled"
    assert "cancelled" in event_types(job)
    assert get_queue(api, queue)["counts"]["cancelled"] == 1


def test_cancel_active_job_then_fail_is_cancelled(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue, max_retries=5, retry_backoff="none")
    fetch_one(api, queue)
    assert api.post(f"/api/v1/jobs/{job_id}/cancel").json() == {"status": "cancelling"}
    resp = fail(api, job_id, "interrupted", worker_id="w1", attempt=1)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["status"] == "cancelled"
    assert answer["next_attempt_at"] is None
    assert get_job(api, job_id)["state"] == "cancelled"
    assert fetch(api, queue) is None


def test_progress_visible_on_job(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue)
    fetch_one(api, queue)
    progress = {"current": 3, "total": 10, "message": "third row"}
    assert heartbeat(api, {job_id: {"progress": progress, "attempt": 1}}) == {job_id: "ok"}
    assert get_job(api, job_id)["progress"] == progress
    assert heartbeat(api, {job_id: {"progress": {"current": 7, "total": 10}}}) == {job_id: "ok"}
    assert get_job(api, job_id)["progress"]["current"] == 7


def test_checkpoint_survives_fail_and_refetch(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue, retry_backoff="none")
    first = fetch_one(api, queue)
    assert first["checkpoint"] is None
    checkpoint = {"offset": 1200, "cursor": "abc"}
    assert heartbeat(api, {job_id: {"checkpoint": checkpoint, "attempt": 1}}) == {job_id: "ok"}
    assert get_job(api, job_id)["checkpoint"] == checkpoint

    assert fail(api, job_id, "db timeout", worker_id="w1", attempt=1).status_code == 200
    second = fetch_one(api, queue, worker_id="w2")
    assert second["job_id"] == job_id
    assert second["attempt"] == 2
    assert second["checkpoint"] == checkpoint
