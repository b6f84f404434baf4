"""Bulk job actions by id over HTTP: per-action states, counts, and background runs."""

from __future__ import annotations

import time
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
    heartbeat,
    one_job_in_each_state,
    parse_ts,
    wait_for,
)

UNKNOWN = "job_01ARZ3NDEKTSV4RRFFQ69G5FAV"
STATES = ("pending", "scheduled", "retrying", "active", "completed", "dead", "cancelled")


def _bulk(api: httpx.Client, **body: Any) -> dict[str, Any]:
    resp = api.post("/api/v1/jobs/bulk", json=body)
    assert resp.status_code == 200, resp.text
    answer: dict[str, Any] = resp.json()
    assert set(answer) == {"affected", "skipped", "errors", "duration_ms"}
    assert answer["duration_ms"] >= 0
    return answer


def _counts(api: httpx.Client, queue: str) -> dict[str, int]:
    counts: dict[str, int] = get_queue(api, queue)["counts"]
    return counts


def _states_by_job(api: httpx.Client, ids: list[str]) -> dict[str, int]:
    """Counts of each state over the jobs that still exist, from GET job."""
    tally = dict.fromkeys(STATES, 0)
    for job_id in ids:
        resp = api.get(f"/api/v1/jobs/{job_id}")
        if resp.status_code == 404:
            continue
        tally[resp.json()["state"]] += 1
    return tally


def test_bulk_retry(api: httpx.Client, queue: str) -> None:
    jobs = one_job_in_each_state(api, queue)
    answer = _bulk(api, action="retry", job_ids=[*jobs.values(), UNKNOWN])
    assert (answer["affected"], answer["skipped"], answer["errors"]) == (3, 4, 1)
    for state in ("completed", "dead", "cancelled"):
        job = get_job(api, jobs[state])
        assert (job["state"], job["attempt"], job["result"]) == ("pending", 0, None), state
    assert len(get_job(api, jobs["dead"])["errors"]) == 1
    for state in ("pending", "scheduled", "retrying", "active"):
        assert get_job(api, jobs[state])["state"] == state
    assert _counts(api, queue) == _states_by_job(api, list(jobs.values()))
    assert _counts(api, queue)["pending"] == 4


def test_bulk_cancel(api: httpx.Client, queue: str) -> None:
    jobs = one_job_in_each_state(api, queue)
    answer = _bulk(api, action="cancel", job_ids=list(jobs.values()))
    # pending, scheduled, retrying cancelled; active asked to stop (counted as affected)
    assert (answer["affected"], answer["skipped"], answer["errors"]) == (4, 3, 0)
    for state in ("pending", "scheduled", "retrying"):
        job = get_job(api, jobs[state])
        assert job["state"] == "cancelled", state
        assert job["events"][-1]["type"] == "cancelled"
    active = get_job(api, jobs["active"])
    assert (active["state"], active["cancel_requested"]) == ("active", True)
    assert heartbeat(api, {jobs["active"]: {}}) == {jobs["active"]: "cancel"}
    assert ack(api, jobs["active"]).json() == {"status": "cancelled"}
    for state in ("completed", "dead"):
        assert get_job(api, jobs[state])["state"] == state
    assert _counts(api, queue) == _states_by_job(api, list(jobs.values()))
    assert _counts(api, queue)["cancelled"] == 5


def test_bulk_delete(api: httpx.Client, queue: str) -> None:
    jobs = one_job_in_each_state(api, queue)
    keep = enqueue(api, queue)
    answer = _bulk(api, action="delete", job_ids=[*jobs.values(), UNKNOWN, UNKNOWN + "X"])
    assert (answer["affected"], answer["skipped"], answer["errors"]) == (7, 0, 2)
    for job_id in jobs.values():
        assert api.get(f"/api/v1/jobs/{job_id}").status_code == 404
    assert _counts(api, queue) == {**dict.fromkeys(STATES, 0), "pending": 1}
    assert fetch_one(api, queue)["job_id"] == keep


def test_bulk_move(api: httpx.Client, queue: str) -> None:
    target = f"{queue}.to"
    jobs = one_job_in_each_state(api, queue)
    answer = _bulk(api, action="move", job_ids=list(jobs.values()), move_to_queue=target)
    assert (answer["affected"], answer["skipped"], answer["errors"]) == (4, 3, 0)
    for state in ("pending", "dead", "scheduled", "completed"):
        job = get_job(api, jobs[state])
        assert (job["queue"], job["state"]) == (target, state)
        assert job["events"][-1]["type"] == "moved"
        assert job["events"][-1]["data"] == {"from": queue, "to": target}
    for state in ("active", "retrying", "cancelled"):
        assert get_job(api, jobs[state])["queue"] == queue
    target_counts = _counts(api, target)
    assert {s: n for s, n in target_counts.items() if n} == {
        "pending": 1,
        "dead": 1,
        "scheduled": 1,
        "completed": 1,
    }
    source_counts = _counts(api, queue)
    assert {s: n for s, n in source_counts.items() if n} == {
        "active": 1,
        "retrying": 1,
        "cancelled": 1,
    }
    assert fetch(api, queue) is None
    assert fetch_one(api, target)["job_id"] == jobs["pending"]


def test_bulk_move_needs_a_target(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue)
    resp = api.post("/api/v1/jobs/bulk", json={"action": "move", "job_ids": [job_id]})
    assert resp.status_code == 400
    assert error_code(resp) == "VALIDATION_ERROR"
    resp = api.post(
        "/api/v1/jobs/bulk",
        json={"action": "move", "job_ids": [job_id], "move_to_queue": "bad name"},
    )
    assert resp.status_code == 400
    assert get_job(api, job_id)["queue"] == queue


def test_bulk_requeue_grants_exactly_one_more_attempt(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue, max_retries=1, retry_backoff="none")
    for attempt in (1, 2):
        fetched = fetch_one(api, queue)
        assert (fetched["job_id"], fetched["attempt"]) == (job_id, attempt)
        heartbeat(api, {job_id: {"checkpoint": {"at": attempt}}})
        assert fail(api, job_id, f"err{attempt}").status_code == 200
    dead = get_job(api, job_id)
    assert (dead["state"], dead["attempt"]) == ("dead", 2)
    other_pending = enqueue(api, queue)

    answer = _bulk(api, action="requeue", job_ids=[job_id, other_pending])
    assert (answer["affected"], answer["skipped"], answer["errors"]) == (1, 1, 0)
    job = get_job(api, job_id)
    assert (job["state"], job["attempt"]) == ("pending", 2)
    assert [e["error"] for e in job["errors"]] == ["err1", "err2"]
    assert job["checkpoint"] == {"at": 2}

    fetched = fetch_one(api, queue)
    assert (fetched["job_id"], fetched["attempt"]) == (job_id, 3)
    assert fetched["checkpoint"] == {"at": 2}
    resp = fail(api, job_id, "err3")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "status": "dead",
        "next_attempt_at": None,
        "attempts_remaining": 0,
    }
    assert len(get_job(api, job_id)["errors"]) == 3


def test_bulk_requeue_then_success(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue, max_retries=0)
    fetch_one(api, queue)
    fail(api, job_id)
    assert _bulk(api, action="requeue", job_ids=[job_id])["affected"] == 1
    assert fetch_one(api, queue)["attempt"] == 2
    assert ack(api, job_id).json() == {"status": "completed"}
    job = get_job(api, job_id)
    assert job["state"] == "completed"
    assert len(job["errors"]) == 1


def test_bulk_change_priority(api: httpx.Client, queue: str) -> None:
    jobs = one_job_in_each_state(api, queue)
    second = enqueue(api, queue)
    answer = _bulk(
        api, action="change_priority", job_ids=[*jobs.values(), second], priority="critical"
    )
    assert (answer["affected"], answer["skipped"], answer["errors"]) == (3, 5, 0)
    for state in ("pending", "scheduled"):
        assert get_job(api, jobs[state])["priority"] == "critical"
    for state in ("active", "retrying", "completed", "dead", "cancelled"):
        assert get_job(api, jobs[state])["priority"] == "normal"
    # critical jobs first, FIFO among them; then high; then normal
    normal = enqueue(api, queue)
    later = enqueue(api, queue)
    assert _bulk(api, action="change_priority", job_ids=[later], priority=1)["affected"] == 1
    assert get_job(api, later)["priority"] == "high"
    order = [fetch_one(api, queue)["job_id"] for _ in range(4)]
    assert order == [jobs["pending"], second, later, normal]


def test_bulk_bad_requests(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue)
    bad_bodies: list[dict[str, Any]] = [
        {"action": "explode", "job_ids": [job_id]},
        {"action": "retry"},
        {"action": "retry", "job_ids": []},
        {"action": "change_priority", "job_ids": [job_id]},
        {"action": "change_priority", "job_ids": [job_id], "priority": "urgent"},
        {"action": "retry", "job_ids": [job_id], "bogus": 1},
        {"action": "retry", "job_ids": "job_x"},
    ]
    for body in bad_bodies:
        resp = api.post("/api/v1/jobs/bulk", json=body)
        assert resp.status_code == 400, (body, resp.text)
        assert error_code(resp) == "VALIDATION_ERROR"
    resp = api.post(
        "/api/v1/jobs/bulk",
        content=b'{"action":"delete","job_ids":["x"]}',
        headers={"Content-Type": "text/plain"},
    )
    assert resp.status_code == 415
    assert get_job(api, job_id)["state"] == "pending"


def test_bulk_only_unknown_ids(api: httpx.Client) -> None:
    answer = _bulk(api, action="delete", job_ids=[UNKNOWN])
    assert (answer["affected"], answer["skipped"], answer["errors"]) == (0, 0, 1)


def test_bulk_delete_releases_locks_and_counts_batch_jobs_failed(
    api: httpx.Client, queue: str
) -> None:
    resp = api.post(
        "/api/v1/enqueue/batch",
        json={
            "jobs": [{"queue": queue, "unique_key": f"k{i}"} for i in range(3)],
            "batch": {"callback_queue": f"{queue}.cb"},
        },
    )
    assert resp.status_code == 201, resp.text
    batch_id, ids = resp.json()["batch_id"], resp.json()["job_ids"]
    assert _bulk(api, action="delete", job_ids=ids[:2])["affected"] == 2
    batch = api.get(f"/api/v1/batches/{batch_id}").json()
    assert (batch["pending"], batch["failed"], batch["state"]) == (1, 2, "running")
    assert _bulk(api, action="cancel", job_ids=ids[2:])["affected"] == 1
    batch = api.get(f"/api/v1/batches/{batch_id}").json()
    assert (batch["pending"], batch["failed"], batch["state"]) == (0, 3, "completed")
    assert fetch_one(api, f"{queue}.cb")["job_id"] == batch["callback_job_id"]
    assert fetch(api, f"{queue}.cb") is None
    for i in range(3):
        again = api.post("/api/v1/enqueue", json={"queue": queue, "unique_key": f"k{i}"})
        assert again.status_code == 201, again.text
        assert again.json()["unique_existing"] is False


def _enqueue_many(api: httpx.Client, queue: str, n: int) -> list[str]:
    ids: list[str] = []
    while len(ids) < n:
        size = min(1000, n - len(ids))
        resp = api.post("/api/v1/enqueue/batch", json={"jobs": [{"queue": queue}] * size})
        assert resp.status_code == 201, resp.text
        ids.extend(resp.json()["job_ids"])
    return ids


def test_bulk_above_10000_runs_in_the_background(api: httpx.Client, queue: str) -> None:
    ids = _enqueue_many(api, queue, 10_001)
    done = ids.pop()
    assert fetch_one(api, queue)["job_id"] == ids[0]  # FIFO: the first one goes active
    # one completed job, to be skipped (finished on a side queue so FIFO stays simple)
    resp = api.post(f"/api/v1/jobs/{done}/move", json={"queue": f"{queue}.side"})
    assert resp.status_code == 200
    assert fetch_one(api, f"{queue}.side")["job_id"] == done
    assert ack(api, done).status_code == 200

    job_ids = [*ids, done, UNKNOWN, UNKNOWN + "Y"]
    started = time.monotonic()
    resp = api.post("/api/v1/jobs/bulk", json={"action": "cancel", "job_ids": job_ids})
    assert resp.status_code == 202, resp.text
    accepted = resp.json()
    assert set(accepted) == {"bulk_operation_id", "status", "estimated_total", "progress_url"}
    bulk_id = accepted["bulk_operation_id"]
    assert bulk_id.startswith("bulk_")
    assert accepted["status"] in ("running", "completed")
    assert accepted["estimated_total"] == 10_001
    assert accepted["progress_url"] == f"/api/v1/bulk/{bulk_id}"

    def finished() -> dict[str, Any] | None:
        status = api.get(accepted["progress_url"])
        assert status.status_code == 200, status.text
        body: dict[str, Any] = status.json()
        assert body["status"] in ("running", "completed"), body
        return body if body["status"] == "completed" else None

    final = wait_for(finished, timeout=30, interval=0.05, what="bulk operation")
    assert time.monotonic() - started < 30
    assert set(final) == {
        "id",
        "action",
        "status",
        "estimated_total",
        "affected",
        "skipped",
        "errors",
        "created_at",
        "finished_at",
    }
    assert (final["id"], final["action"]) == (bulk_id, "cancel")
    # 9,999 pending cancelled + 1 active asked to stop; the completed one skipped
    assert (final["affected"], final["skipped"], final["errors"]) == (10_000, 1, 2)
    assert parse_ts(final["finished_at"]) >= parse_ts(final["created_at"])

    counts = _counts(api, queue)
    assert (counts["pending"], counts["cancelled"], counts["active"]) == (0, 9_999, 1)
    assert get_job(api, ids[0])["cancel_requested"] is True
    assert get_job(api, done)["state"] == "completed"

    # leave the shared server small
    resp = api.delete(f"/api/v1/queues/{queue}?confirm=true")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"deleted_jobs": 10_000}


def test_unknown_bulk_operation_is_404(api: httpx.Client) -> None:
    resp = api.get("/api/v1/bulk/bulk_01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert resp.status_code == 404
    assert error_code(resp) == "NOT_FOUND"


def _dead_after_two_attempts(api: httpx.Client, queue: str) -> str:
    job_id = enqueue(api, queue, max_retries=1, retry_backoff="none")
    for _ in range(2):
        fetch_one(api, queue)
        fail(api, job_id)
    assert get_job(api, job_id)["state"] == "dead"
    return job_id


def test_bulk_requeue_keeps_the_configured_max_retries(api: httpx.Client, queue: str) -> None:
    job_id = _dead_after_two_attempts(api, queue)
    assert _bulk(api, action="requeue", job_ids=[job_id])["affected"] == 1
    job = get_job(api, job_id)
    # spec 11: requeue keeps attempt, errors and checkpoint; max_retries is the job's own
    # setting (spec 3) and nothing says requeue changes it
    assert (job["state"], job["attempt"], job["max_retries"]) == ("pending", 2, 1)


def test_retry_after_requeue_runs_the_configured_number_of_times(
    api: httpx.Client, queue: str
) -> None:
    job_id = _dead_after_two_attempts(api, queue)
    assert _bulk(api, action="requeue", job_ids=[job_id])["affected"] == 1
    fetch_one(api, queue)
    assert fail(api, job_id).json()["status"] == "dead"
    # a manual retry starts from attempt 0: max_retries + 1 = 2 runs, as enqueued (spec 4)
    assert api.post(f"/api/v1/jobs/{job_id}/retry").status_code == 200
    fetch_one(api, queue)
    first = fail(api, job_id).json()
    assert (first["status"], first["attempts_remaining"]) == ("retrying", 1)
    fetch_one(api, queue)
    second = fail(api, job_id).json()
    assert (second["status"], second["attempts_remaining"]) == ("dead", 0)
