"""Failures, retries with backoff, promotion by the scheduler and the dead letter state."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.integration.helpers import (
    LongPoll,
    ack,
    advance_clock,
    assert_still_waiting,
    enqueue,
    event_types,
    fail,
    fetch,
    fetch_one,
    get_job,
    get_queue,
    server_now,
    ts_epoch,
)


def timed_fail(
    api: httpx.Client, job_id: str, error: str, **body: Any
) -> tuple[dict[str, Any], float]:
    """Fail a job; returns the answer and the seconds after the call's start of next_attempt_at
    (by the server's clock, which a test may have moved)."""
    before = server_now(api)
    resp = fail(api, job_id, error, **body)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert set(answer) >= {"status", "next_attempt_at", "attempts_remaining"}
    offset = ts_epoch(answer["next_attempt_at"]) - before if answer["next_attempt_at"] else -1.0
    return answer, offset


def test_fail_then_retry_after_fixed_backoff(clock_api: httpx.Client, queue: str) -> None:
    api = clock_api
    job_id = enqueue(
        api, queue, payload={"x": 1}, max_retries=2, retry_backoff="fixed", retry_base_delay=30
    )
    fetch_one(api, queue, worker_id="w1")
    answer, offset = timed_fail(
        api, job_id, "connection refused", backtrace="Traceback: line 1", worker_id="w1", attempt=1
    )
    assert answer["status"] == "retrying"
    assert answer["attempts_remaining"] == 2
    assert 29.99 <= offset <= 30 + 0.5

    job = get_job(api, job_id)
    assert job["state"] == "retrying"
    assert job["last_error"] == "connection refused"
    assert job["failed_at"] is not None
    assert len(job["errors"]) == 1
    error = job["errors"][0]
    assert error["attempt"] == 1
    assert error["error"] == "connection refused"
    assert error["backtrace"] == "Traceback: line 1"
    assert ts_epoch(error["at"]) <= ts_epoch(answer["next_attempt_at"])
    counts = get_queue(api, queue)["counts"]
    assert counts["retrying"] == 1 and counts["active"] == 0
    assert fetch(api, queue) is None

    advance_clock(api, 29)
    assert get_job(api, job_id)["state"] == "retrying"
    now = advance_clock(api, 1.1) / 1000
    assert get_job(api, job_id)["state"] == "pending"
    assert now >= ts_epoch(answer["next_attempt_at"])
    second = fetch_one(api, queue, worker_id="w2")
    assert second["job_id"] == job_id
    assert second["attempt"] == 2
    assert second["payload"] == {"x": 1}
    assert ack(api, job_id, result="ok", worker_id="w2", attempt=2).json() == {
        "status": "completed"
    }

    job = get_job(api, job_id)
    assert job["state"] == "completed"
    assert job["attempt"] == 2
    assert len(job["errors"]) == 1
    types = event_types(job)
    assert "failed" in types or "retrying" in types
    totals = get_queue(api, queue)["totals"]
    assert totals == {"enqueued": 1, "completed": 1, "failed": 1, "dead": 0}


def test_retrying_job_is_handed_to_a_waiting_long_poll(clock_api: httpx.Client, queue: str) -> None:
    api = clock_api
    job_id = enqueue(api, queue, retry_backoff="fixed", retry_base_delay=30)
    fetch_one(api, queue)
    with LongPoll(api) as poll:
        future = poll.start([queue], timeout=30)
        answer, _ = timed_fail(api, job_id, "boom")
        assert_still_waiting(future)
        moved_at = time.monotonic()
        now = advance_clock(api, 30.1) / 1000
        resp, returned_at = future.result(timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["job_id"] == job_id
    assert resp.json()["attempt"] == 2
    assert now >= ts_epoch(answer["next_attempt_at"])
    assert returned_at - moved_at < 3.0  # woken by the move, not by its 30 s timeout


def test_dead_after_retries_exhausted(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue, max_retries=2, retry_backoff="none")
    answers = []
    for attempt in (1, 2, 3):
        fetched = fetch_one(api, queue, worker_id="w1")
        assert fetched["attempt"] == attempt
        resp = fail(api, job_id, f"error {attempt}", backtrace=f"bt {attempt}", attempt=attempt)
        assert resp.status_code == 200, resp.text
        answers.append(resp.json())

    assert [a["status"] for a in answers] == ["retrying", "retrying", "dead"]
    assert [a["attempts_remaining"] for a in answers] == [2, 1, 0]
    assert answers[2]["next_attempt_at"] is None

    job = get_job(api, job_id)
    assert job["state"] == "dead"
    assert job["attempt"] == 3
    assert job["last_error"] == "error 3"
    assert [(e["attempt"], e["error"], e["backtrace"]) for e in job["errors"]] == [
        (1, "error 1", "bt 1"),
        (2, "error 2", "bt 2"),
        (3, "error 3", "bt 3"),
    ]
    assert "dead" in event_types(job)
    assert fetch(api, queue) is None

    q = get_queue(api, queue)
    assert q["counts"]["dead"] == 1
    assert q["counts"]["pending"] == 0 and q["counts"]["retrying"] == 0
    assert q["totals"]["failed"] == 3
    assert q["totals"]["dead"] == 1
    assert q["totals"]["completed"] == 0


def test_max_retries_zero_dies_on_first_failure(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue, max_retries=0)
    fetch_one(api, queue)
    answer, _ = timed_fail(api, job_id, "fatal")
    assert answer == {"status": "dead", "next_attempt_at": None, "attempts_remaining": 0}
    assert get_job(api, job_id)["state"] == "dead"


def test_fail_of_dead_job_is_conflict(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue, max_retries=0)
    fetch_one(api, queue)
    assert fail(api, job_id).json()["status"] == "dead"
    resp = fail(api, job_id, "again")
    assert resp.status_code == 409
    assert resp.json()["code"] == "CONFLICT"
    assert len(get_job(api, job_id)["errors"]) == 1


def test_backoff_none_is_pending_at_once(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue, max_retries=1, retry_backoff="none")
    fetch_one(api, queue)
    before = time.time()
    answer, _ = timed_fail(api, job_id, "flaky")
    after = time.time()
    assert answer["status"] == "retrying"
    assert answer["attempts_remaining"] == 1
    assert before - 0.01 <= ts_epoch(answer["next_attempt_at"]) <= after + 0.01

    # No scheduler pass needed: the job is pending in the same transaction.
    assert get_job(api, job_id)["state"] == "pending"
    again = fetch_one(api, queue)
    assert again["job_id"] == job_id
    assert again["attempt"] == 2


def test_backoff_none_wakes_a_waiting_worker(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue, retry_backoff="none")
    fetch_one(api, queue)
    with LongPoll(api) as poll:
        future = poll.start([queue], timeout=30)
        assert_still_waiting(future)
        failed_at = time.monotonic()
        assert fail(api, job_id).status_code == 200
        resp, returned_at = future.result(timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["job_id"] == job_id
    assert returned_at - failed_at < 1.0


def test_retried_job_keeps_its_original_fifo_place(api: httpx.Client, queue: str) -> None:
    first = enqueue(api, queue, retry_backoff="none")
    second = enqueue(api, queue)
    assert fetch_one(api, queue)["job_id"] == first
    assert fail(api, first).json()["status"] == "retrying"
    assert fetch_one(api, queue)["job_id"] == first
    assert fetch_one(api, queue)["job_id"] == second


@pytest.mark.parametrize(
    ("backoff", "base", "maximum", "max_seconds", "expected"),
    [
        ("fixed", "400ms", 1.0, 1.0, [0.4, 0.4, 0.4]),
        ("linear", 0.4, "10s", 10.0, [0.4, 0.8, 1.2]),
        ("exponential", 0.4, "1s", 1.0, [0.4, 0.8, 1.0]),
    ],
)
def test_backoff_spacing(
    clock_api: httpx.Client,
    queue: str,
    backoff: str,
    base: float | str,
    maximum: float | str,
    max_seconds: float,
    expected: list[float],
) -> None:
    api = clock_api
    job_id = enqueue(
        api,
        queue,
        max_retries=5,
        retry_backoff=backoff,
        retry_base_delay=base,
        retry_max_delay=maximum,
    )
    job = get_job(api, job_id)
    assert job["retry_backoff"] == backoff
    assert job["retry_base_delay"] == pytest.approx(0.4)
    assert job["retry_max_delay"] == pytest.approx(max_seconds)

    offsets = []
    for attempt, delay in enumerate(expected, start=1):
        fetched = fetch_one(api, queue)
        assert fetched["attempt"] == attempt
        before = server_now(api)
        answer, offset = timed_fail(api, job_id, f"fail {attempt}")
        after = server_now(api)
        assert answer["status"] == "retrying"
        assert answer["attempts_remaining"] == 5 + 1 - attempt
        offsets.append(offset)
        next_at = ts_epoch(answer["next_attempt_at"])
        # The server's clock is read during the call; allow generous slack above.
        assert before + delay - 0.01 <= next_at <= after + delay + 0.25, (attempt, offsets)
        assert fetch(api, queue) is None
        advance_clock(api, delay)  # a scheduler pass at the retry's time promotes it
    assert len(offsets) == len(expected)


def test_default_backoff_is_exponential_from_five_seconds(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue)
    job = get_job(api, job_id)
    assert job["retry_backoff"] == "exponential"
    assert job["retry_base_delay"] == 5
    assert job["retry_max_delay"] == 600
    fetch_one(api, queue)
    answer, offset = timed_fail(api, job_id, "x")
    assert answer["status"] == "retrying"
    assert answer["attempts_remaining"] == 3
    assert 4.99 <= offset <= 5.5
    assert get_job(api, job_id)["state"] == "retrying"
    assert fetch(api, queue) is None


def test_totals_failed_counts_each_failed_attempt(api: httpx.Client, queue: str) -> None:
    a = enqueue(api, queue, retry_backoff="none", max_retries=1)
    b = enqueue(api, queue, retry_backoff="none", max_retries=3)
    # A retried job keeps its FIFO place, so `a` runs twice (and dies) before `b`.
    for job_id in (a, a, b):
        assert fetch_one(api, queue)["job_id"] == job_id
        assert fail(api, job_id).status_code == 200
    assert fetch_one(api, queue)["job_id"] == b
    assert ack(api, b).status_code == 200
    q = get_queue(api, queue)
    assert q["totals"] == {"enqueued": 2, "completed": 1, "failed": 3, "dead": 1}
    assert q["counts"]["dead"] == 1 and q["counts"]["completed"] == 1
