"""Leases, fencing (LEASE_LOST), release and expiry over HTTP.

Tests that need time to pass run on `clock_api` and move the server's clock instead of
sleeping: each move runs one scheduler pass before it answers.
"""

from __future__ import annotations

import time
from typing import Any

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
    ts_epoch,
)


def snapshot(job: dict[str, Any]) -> dict[str, Any]:
    """The parts of a job that a rejected call must leave alone."""
    keys = ("state", "attempt", "worker", "result", "errors", "last_error", "checkpoint")
    return {key: job[key] for key in keys}


def test_lease_expiry_retries_then_dead(clock_api: httpx.Client, queue: str) -> None:
    api = clock_api
    job_id = enqueue(api, queue, max_retries=1, retry_backoff="none")
    fetch_one(api, queue, worker_id="crashy", lease_duration=1)
    job = get_job(api, job_id)
    assert 0.9 <= ts_epoch(job["lease_expires_at"]) - ts_epoch(job["started_at"]) <= 1.1

    advance_clock(api, 1.1)
    job = get_job(api, job_id)
    assert job["state"] == "pending"
    assert job["last_error"] == "lease_expired"
    assert [(e["attempt"], e["error"]) for e in job["errors"]] == [(1, "lease_expired")]

    second = fetch_one(api, queue, worker_id="crashy", lease_duration=1)
    assert second["attempt"] == 2
    advance_clock(api, 1.1)
    job = get_job(api, job_id)
    assert job["state"] == "dead"
    assert [(e["attempt"], e["error"]) for e in job["errors"]] == [
        (1, "lease_expired"),
        (2, "lease_expired"),
    ]
    totals = get_queue(api, queue)["totals"]
    assert totals["failed"] == 2
    assert totals["dead"] == 1
    assert fetch(api, queue) is None


def test_lease_expiry_with_no_retries_is_dead(clock_api: httpx.Client, queue: str) -> None:
    api = clock_api
    job_id = enqueue(api, queue, max_retries=0)
    fetch_one(api, queue, lease_duration=1)
    advance_clock(api, 0.5)
    assert get_job(api, job_id)["state"] == "active"
    advance_clock(api, 0.6)
    job = get_job(api, job_id)
    assert job["state"] == "dead"
    assert job["last_error"] == "lease_expired"
    assert len(job["errors"]) == 1
    assert get_queue(api, queue)["counts"]["dead"] == 1


def test_lease_expiry_uses_backoff_and_keeps_checkpoint(
    clock_api: httpx.Client, queue: str
) -> None:
    api = clock_api
    job_id = enqueue(api, queue, retry_backoff="fixed", retry_base_delay=30)
    fetch_one(api, queue, lease_duration=1)
    assert heartbeat(api, {job_id: {"checkpoint": {"page": 7}, "attempt": 1}}) == {job_id: "ok"}
    advance_clock(api, 1.1)
    job = get_job(api, job_id)
    assert job["state"] == "retrying"
    assert job["last_error"] == "lease_expired"
    assert fetch(api, queue, worker_id="w2") is None
    advance_clock(api, 30)
    again = fetch_one(api, queue, worker_id="w2")
    assert again["job_id"] == job_id
    assert again["attempt"] == 2
    assert again["checkpoint"] == {"page": 7}


def test_expired_lease_is_lost_even_before_the_sweep(clock_api: httpx.Client, queue: str) -> None:
    # The clock moves without a scheduler pass (and this server's own scheduler practically
    # never runs): the clock alone decides.
    api = clock_api
    job_id = enqueue(api, queue)
    fetch_one(api, queue, worker_id="w1", lease_duration=1)
    advance_clock(api, 1.2, maintain=False)
    assert heartbeat(api, {job_id: {"attempt": 1}}, worker_id="w1") == {job_id: "lost"}
    resp = ack(api, job_id, worker_id="w1", attempt=1)
    assert resp.status_code == 409, resp.text
    assert error_code(resp) == "LEASE_LOST"
    resp = fail(api, job_id, "late", worker_id="w1", attempt=1)
    assert resp.status_code == 409, resp.text
    assert error_code(resp) == "LEASE_LOST"
    assert get_job(api, job_id)["state"] == "active"


def test_heartbeat_extends_the_lease(clock_api: httpx.Client, queue: str) -> None:
    api = clock_api
    job_id = enqueue(api, queue, max_retries=0)
    fetch_one(api, queue, worker_id="w1", lease_duration=1)
    first_end = ts_epoch(get_job(api, job_id)["lease_expires_at"])
    # 2.4 s in all, each step followed by a scheduler pass that would reclaim a lapsed lease.
    for _ in range(4):
        advance_clock(api, 0.6)
        assert heartbeat(api, {job_id: {"attempt": 1}}, worker_id="w1") == {job_id: "ok"}
    job = get_job(api, job_id)
    assert job["state"] == "active"
    assert ts_epoch(job["lease_expires_at"]) > first_end + 1.5
    assert ack(api, job_id, worker_id="w1", attempt=1).status_code == 200


def test_ack_with_wrong_worker_is_lease_lost(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue)
    fetch_one(api, queue, worker_id="owner")
    before = snapshot(get_job(api, job_id))

    resp = ack(api, job_id, worker_id="intruder", attempt=1, result="stolen")
    assert resp.status_code == 409
    assert error_code(resp) == "LEASE_LOST"
    resp = fail(api, job_id, "nope", worker_id="intruder")
    assert resp.status_code == 409
    assert error_code(resp) == "LEASE_LOST"
    resp = ack(api, job_id, attempt=2)
    assert resp.status_code == 409
    assert error_code(resp) == "LEASE_LOST"
    assert heartbeat(api, {job_id: {"attempt": 1}}, worker_id="intruder") == {job_id: "lost"}
    assert snapshot(get_job(api, job_id)) == before
    assert get_queue(api, queue)["totals"]["failed"] == 0

    resp = ack(api, job_id, worker_id="owner", attempt=1, result="mine")
    assert resp.status_code == 200
    assert get_job(api, job_id)["result"] == "mine"


def test_stale_attempt_cannot_touch_the_new_attempt(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue, retry_backoff="none")
    fetch_one(api, queue, worker_id="w1")
    assert fail(api, job_id, "first", worker_id="w1", attempt=1).status_code == 200
    assert fetch_one(api, queue, worker_id="w1")["attempt"] == 2
    before = snapshot(get_job(api, job_id))

    for resp in (
        ack(api, job_id, worker_id="w1", attempt=1),
        fail(api, job_id, "stale", worker_id="w1", attempt=1),
        api.post(f"/api/v1/release/{job_id}", json={"worker_id": "w1", "attempt": 1}),
    ):
        assert resp.status_code == 409, resp.text
        assert error_code(resp) == "LEASE_LOST"
    assert heartbeat(api, {job_id: {"attempt": 1}}, worker_id="w1") == {job_id: "lost"}
    assert heartbeat(api, {job_id: {"attempt": 2}}, worker_id="w1") == {job_id: "ok"}
    assert snapshot(get_job(api, job_id)) == before
    assert get_queue(api, queue)["totals"]["failed"] == 1

    assert ack(api, job_id, worker_id="w1", attempt=2).json() == {"status": "completed"}


def test_fencing_on_finished_job_is_lease_lost_else_conflict(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue)
    fetch_one(api, queue, worker_id="w1")
    assert ack(api, job_id, worker_id="w1", attempt=1, result=1).status_code == 200

    resp = ack(api, job_id, worker_id="w1", attempt=1, result=2)
    assert resp.status_code == 409
    assert error_code(resp) == "LEASE_LOST"
    resp = ack(api, job_id, result=3)
    assert resp.status_code == 409
    assert error_code(resp) == "CONFLICT"
    resp = fail(api, job_id, "late")
    assert resp.status_code == 409
    assert error_code(resp) == "CONFLICT"
    assert heartbeat(api, {job_id: {}}, worker_id="w1") == {job_id: "lost"}
    job = get_job(api, job_id)
    assert job["state"] == "completed" and job["result"] == 1 and job["errors"] == []


def test_ack_of_pending_job_without_fencing_is_conflict(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue)
    resp = ack(api, job_id)
    assert resp.status_code == 409
    assert error_code(resp) == "CONFLICT"
    resp = ack(api, job_id, worker_id="w1", attempt=1)
    assert resp.status_code == 409
    assert error_code(resp) == "LEASE_LOST"
    assert get_job(api, job_id)["state"] == "pending"


def test_heartbeat_of_unknown_job_is_lost_not_an_error(api: httpx.Client) -> None:
    unknown = "job_01ARZ3NDEKTSV4RRFFQ69G5FAV"
    assert heartbeat(api, {unknown: {}}) == {unknown: "lost"}
    assert heartbeat(api, {unknown: {"attempt": 1}}, worker_id=None) == {unknown: "lost"}
    resp = api.post("/api/v1/heartbeat", json={"worker_id": "w1", "jobs": {}})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"jobs": {}}


def test_attempt_below_one_is_400(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue)
    fetch_one(api, queue)
    resp = ack(api, job_id, worker_id="w1", attempt=0)
    assert resp.status_code == 400
    assert error_code(resp) == "VALIDATION_ERROR"
    assert get_job(api, job_id)["state"] == "active"


def test_release_hands_the_job_back_without_a_retry(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue, max_retries=0)
    fetch_one(api, queue, worker_id="w1")
    assert heartbeat(api, {job_id: {"checkpoint": {"step": 1}, "attempt": 1}}) == {job_id: "ok"}

    resp = api.post(f"/api/v1/release/{job_id}", json={"worker_id": "w1", "attempt": 1})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"status": "pending"}
    job = get_job(api, job_id)
    assert job["state"] == "pending"
    assert job["attempt"] == 0
    assert job["checkpoint"] == {"step": 1}
    assert job["errors"] == [] and job["last_error"] is None
    assert "released" in event_types(job)
    q = get_queue(api, queue)
    assert q["totals"]["failed"] == 0
    assert q["counts"]["pending"] == 1 and q["counts"]["active"] == 0

    again = fetch_one(api, queue, worker_id="w2")
    assert again["attempt"] == 1
    assert again["checkpoint"] == {"step": 1}

    # Release with a checkpoint replaces it.
    resp = api.post(
        f"/api/v1/release/{job_id}",
        json={"worker_id": "w2", "attempt": 1, "checkpoint": {"step": 2}},
    )
    assert resp.json() == {"status": "pending"}
    third = fetch_one(api, queue, worker_id="w3")
    assert third["attempt"] == 1
    assert third["checkpoint"] == {"step": 2}

    # The retry budget is untouched: max_retries 0 still means one failure kills it.
    answer = fail(api, job_id, "real failure", worker_id="w3", attempt=1).json()
    assert answer["status"] == "dead"
    assert [e["attempt"] for e in get_job(api, job_id)["errors"]] == [1]


def test_release_of_non_active_job(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue)
    resp = api.post(f"/api/v1/release/{job_id}")
    assert resp.status_code == 409
    assert error_code(resp) == "CONFLICT"
    resp = api.post(f"/api/v1/release/{job_id}", json={"worker_id": "w1", "attempt": 1})
    assert resp.status_code == 409
    assert error_code(resp) == "LEASE_LOST"
    assert get_job(api, job_id)["state"] == "pending"


def test_release_wakes_a_waiting_fetch(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue)
    fetch_one(api, queue, worker_id="w1")
    with LongPoll(api) as poll:
        future = poll.start([queue], timeout=30)
        assert_still_waiting(future)
        released_at = time.monotonic()
        resp = api.post(f"/api/v1/release/{job_id}")
        assert resp.json() == {"status": "pending"}
        answer, returned_at = future.result(timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["job_id"] == job_id
    assert answer.json()["attempt"] == 1
    assert returned_at - released_at < 1.0


def test_unfetched_job_expires_to_dead(clock_api: httpx.Client, queue: str) -> None:
    api = clock_api
    api.post(f"/api/v1/queues/{queue}/pause").raise_for_status()
    job_id = enqueue(api, queue, expire_after=1)
    job = get_job(api, job_id)
    assert 0.99 <= ts_epoch(job["expire_at"]) - ts_epoch(job["created_at"]) <= 1.01

    advance_clock(api, 0.5)
    assert get_job(api, job_id)["state"] == "pending"
    now = advance_clock(api, 0.6) / 1000
    job = get_job(api, job_id)
    assert job["state"] == "dead"
    assert job["last_error"] == "expired"
    assert now >= ts_epoch(job["expire_at"])
    assert job["attempt"] == 0
    q = get_queue(api, queue)
    assert q["counts"]["dead"] == 1 and q["counts"]["pending"] == 0
    assert q["totals"]["dead"] == 1

    api.post(f"/api/v1/queues/{queue}/resume").raise_for_status()
    assert fetch(api, queue) is None


def test_job_past_expire_at_is_never_handed_out(clock_api: httpx.Client, queue: str) -> None:
    # The clock moves without a sweep, so only the check at fetch stands between the worker
    # and the expired job.
    api = clock_api
    expired = enqueue(api, queue, expire_after="1s")
    fresh = enqueue(api, queue, expire_after="1h")
    advance_clock(api, 1.2, maintain=False)

    answer = fetch_one(api, queue, count=10)
    assert [j["job_id"] for j in answer["jobs"]] == [fresh]
    assert fetch(api, queue) is None
    job = get_job(api, expired)
    assert job["state"] == "dead"
    assert job["last_error"] == "expired"


def test_active_job_past_expiry_finishes_its_attempt(clock_api: httpx.Client, queue: str) -> None:
    api = clock_api
    done = enqueue(api, queue, expire_after=1)
    failing = enqueue(api, queue, expire_after=1, max_retries=5, retry_backoff="none")
    fetch_one(api, queue, worker_id="w1", lease_duration=30)
    fetch_one(api, queue, worker_id="w1", lease_duration=30)
    advance_clock(api, 1.3)

    assert get_job(api, done)["state"] == "active"
    assert ack(api, done, worker_id="w1", attempt=1).json() == {"status": "completed"}
    answer = fail(api, failing, "boom", worker_id="w1", attempt=1).json()
    assert answer["status"] == "dead"
    assert answer["next_attempt_at"] is None
    assert answer["attempts_remaining"] == 0
    assert get_job(api, failing)["state"] == "dead"


def test_lease_reclaim_wakes_a_waiting_fetch(clock_api: httpx.Client, queue: str) -> None:
    api = clock_api
    job_id = enqueue(api, queue, retry_backoff="none")
    fetch_one(api, queue, worker_id="crashed", lease_duration=1)
    with LongPoll(api) as poll:
        future = poll.start([queue], timeout=30)
        assert_still_waiting(future)
        moved_at = time.monotonic()
        advance_clock(api, 1.1)
        resp, returned_at = future.result(timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["job_id"] == job_id
    assert resp.json()["attempt"] == 2
    assert returned_at - moved_at < 3.0  # woken by the move, not by its 30 s timeout


def test_lease_expiry_of_cancel_requested_job_cancels_it(
    clock_api: httpx.Client, queue: str
) -> None:
    api = clock_api
    job_id = enqueue(api, queue, max_retries=3, retry_backoff="none")
    fetch_one(api, queue, lease_duration=1)
    assert api.post(f"/api/v1/jobs/{job_id}/cancel").json() == {"status": "cancelling"}
    advance_clock(api, 1.1)
    job = get_job(api, job_id)
    assert job["state"] == "cancelled"
    assert job["cancel_requested"] is True
    assert fetch(api, queue) is None
