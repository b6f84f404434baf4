"""Operator actions on single jobs over HTTP: retry, cancel, move, delete; batches and locks."""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.helpers import (
    LongPoll,
    ack,
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
)

UNKNOWN_JOB = "job_01ARZ3NDEKTSV4RRFFQ69G5FAV"


def _dead_job(api: httpx.Client, queue: str, **fields: Any) -> str:
    """A job that failed its only attempt, with a checkpoint and progress saved first."""
    job_id = enqueue(api, queue, max_retries=0, **fields)
    fetch_one(api, queue)
    statuses = heartbeat(
        api,
        {job_id: {"checkpoint": {"step": 3}, "progress": {"current": 1, "total": 2}}},
    )
    assert statuses == {job_id: "ok"}
    resp = fail(api, job_id, "kaput")
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "dead"
    return job_id


def _completed_job(api: httpx.Client, queue: str, **fields: Any) -> str:
    job_id = enqueue(api, queue, **fields)
    assert fetch_one(api, queue)["job_id"] == job_id
    resp = ack(api, job_id, result={"ok": True})
    assert resp.status_code == 200, resp.text
    return job_id


def _enqueue_unique(api: httpx.Client, queue: str, key: str) -> dict[str, Any]:
    resp = api.post("/api/v1/enqueue", json={"queue": queue, "unique_key": key})
    assert resp.status_code in (200, 201), resp.text
    body: dict[str, Any] = resp.json()
    return body


# --- retry -------------------------------------------------------------------------------------


def test_retry_dead_job_resets_attempt_and_clears_run_state(api: httpx.Client, queue: str) -> None:
    job_id = _dead_job(api, queue)
    before = get_job(api, job_id)
    assert before["checkpoint"] == {"step": 3}
    assert before["attempt"] == 1

    resp = api.post(f"/api/v1/jobs/{job_id}/retry")
    assert resp.status_code == 200, resp.text
    job = resp.json()
    assert job["id"] == job_id
    assert job["state"] == "pending"
    assert job["attempt"] == 0
    assert job["result"] is None
    assert job["progress"] is None
    assert job["checkpoint"] is None
    # errors stay as history
    assert [(e["attempt"], e["error"]) for e in job["errors"]] == [(1, "kaput")]
    assert get_job(api, job_id)["state"] == "pending"
    assert get_queue(api, queue)["counts"]["dead"] == 0
    assert get_queue(api, queue)["counts"]["pending"] == 1

    fetched = fetch_one(api, queue)
    assert fetched["job_id"] == job_id
    assert fetched["attempt"] == 1
    assert fetched["checkpoint"] is None


def test_retry_completed_job_clears_result(api: httpx.Client, queue: str) -> None:
    job_id = _completed_job(api, queue)
    assert get_job(api, job_id)["result"] == {"ok": True}
    resp = api.post(f"/api/v1/jobs/{job_id}/retry")
    assert resp.status_code == 200, resp.text
    job = resp.json()
    assert (job["state"], job["attempt"], job["result"]) == ("pending", 0, None)
    assert job["completed_at"] is None
    # the retry is on the timeline after the completion
    types = event_types(get_job(api, job_id))
    assert types[:3] == ["enqueued", "started", "completed"]
    assert len(types) == 4
    assert fetch_one(api, queue)["job_id"] == job_id


def test_retry_cancelled_job(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue)
    assert api.post(f"/api/v1/jobs/{job_id}/cancel").json() == {"status": "cancelled"}
    resp = api.post(f"/api/v1/jobs/{job_id}/retry")
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "pending"
    assert fetch_one(api, queue)["job_id"] == job_id


def test_retry_in_wrong_state_is_409_and_changes_nothing(api: httpx.Client, queue: str) -> None:
    pending = enqueue(api, queue)
    resp = api.post(f"/api/v1/jobs/{pending}/retry")
    assert resp.status_code == 409
    assert error_code(resp) == "CONFLICT"
    assert get_job(api, pending)["state"] == "pending"

    active = fetch_one(api, queue)["job_id"]
    resp = api.post(f"/api/v1/jobs/{active}/retry")
    assert resp.status_code == 409
    assert error_code(resp) == "CONFLICT"
    job = get_job(api, active)
    assert (job["state"], job["attempt"]) == ("active", 1)

    scheduled = enqueue(api, queue, delay="1h")
    assert api.post(f"/api/v1/jobs/{scheduled}/retry").status_code == 409


def test_retry_unknown_job_is_404(api: httpx.Client) -> None:
    resp = api.post(f"/api/v1/jobs/{UNKNOWN_JOB}/retry")
    assert resp.status_code == 404
    assert error_code(resp) == "NOT_FOUND"


# --- cancel ------------------------------------------------------------------------------------


def test_cancel_pending_and_scheduled_jobs(api: httpx.Client, queue: str) -> None:
    pending = enqueue(api, queue)
    scheduled = enqueue(api, queue, delay="1h")
    for job_id in (pending, scheduled):
        resp = api.post(f"/api/v1/jobs/{job_id}/cancel")
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"status": "cancelled"}
        job = get_job(api, job_id)
        assert job["state"] == "cancelled"
        assert event_types(job)[-1] == "cancelled"
    counts = get_queue(api, queue)["counts"]
    assert (counts["pending"], counts["scheduled"], counts["cancelled"]) == (0, 0, 2)
    assert fetch(api, queue) is None


def test_cancel_active_job_is_cooperative(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue)
    fetch_one(api, queue)
    resp = api.post(f"/api/v1/jobs/{job_id}/cancel")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"status": "cancelling"}
    job = get_job(api, job_id)
    assert (job["state"], job["cancel_requested"]) == ("active", True)
    assert heartbeat(api, {job_id: {}}) == {job_id: "cancel"}
    resp = ack(api, job_id)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"status": "cancelled"}
    assert get_job(api, job_id)["state"] == "cancelled"


def test_cancel_finished_job_is_409(api: httpx.Client, queue: str) -> None:
    job_id = _completed_job(api, queue)
    resp = api.post(f"/api/v1/jobs/{job_id}/cancel")
    assert resp.status_code == 409
    assert error_code(resp) == "CONFLICT"
    assert get_job(api, job_id)["state"] == "completed"
    assert api.post(f"/api/v1/jobs/{UNKNOWN_JOB}/cancel").status_code == 404


def test_cancel_releases_unique_lock(api: httpx.Client, queue: str) -> None:
    first = _enqueue_unique(api, queue, "report-1")
    assert first["unique_existing"] is False
    dup = _enqueue_unique(api, queue, "report-1")
    assert (dup["unique_existing"], dup["job_id"]) == (True, first["job_id"])
    assert api.post(f"/api/v1/jobs/{first['job_id']}/cancel").status_code == 200
    again = _enqueue_unique(api, queue, "report-1")
    assert again["unique_existing"] is False
    assert again["job_id"] != first["job_id"]


def test_cancelled_active_job_holds_its_lock_until_it_stops(api: httpx.Client, queue: str) -> None:
    first = _enqueue_unique(api, queue, "sync")
    fetch_one(api, queue)
    assert api.post(f"/api/v1/jobs/{first['job_id']}/cancel").json() == {"status": "cancelling"}
    dup = _enqueue_unique(api, queue, "sync")
    assert (dup["unique_existing"], dup["job_id"]) == (True, first["job_id"])
    assert ack(api, first["job_id"]).json() == {"status": "cancelled"}
    again = _enqueue_unique(api, queue, "sync")
    assert again["unique_existing"] is False


# --- move --------------------------------------------------------------------------------------


def test_move_pending_job_to_another_queue(api: httpx.Client, queue: str) -> None:
    target = f"{queue}.moved"
    job_id = enqueue(api, queue, payload={"n": 1})
    resp = api.post(f"/api/v1/jobs/{job_id}/move", json={"queue": target})
    assert resp.status_code == 200, resp.text
    job = resp.json()
    assert (job["id"], job["queue"], job["state"]) == (job_id, target, "pending")
    moved = [e for e in job["events"] if e["type"] == "moved"]
    assert len(moved) == 1
    assert moved[0]["data"] == {"from": queue, "to": target}

    assert get_queue(api, queue)["counts"]["pending"] == 0
    assert get_queue(api, target)["counts"]["pending"] == 1
    assert fetch(api, queue) is None
    fetched = fetch_one(api, target)
    assert (fetched["job_id"], fetched["queue"], fetched["payload"]) == (job_id, target, {"n": 1})


def test_move_wakes_a_long_poll_on_the_target_queue(api: httpx.Client, queue: str) -> None:
    target = f"{queue}.target"
    job_id = enqueue(api, queue)
    with LongPoll(api) as poller:
        future = poller.start([target], timeout=30)
        assert_still_waiting(future)
        resp = api.post(f"/api/v1/jobs/{job_id}/move", json={"queue": target})
        assert resp.status_code == 200, resp.text
        got, _ = future.result(timeout=5)
    assert got.status_code == 200, got.text
    assert got.json()["job_id"] == job_id
    assert get_job(api, job_id)["state"] == "active"


def test_move_dead_and_scheduled_jobs(api: httpx.Client, queue: str) -> None:
    target = f"{queue}.other"
    dead = _dead_job(api, queue)
    scheduled = enqueue(api, queue, delay="1h")
    for job_id, state in ((dead, "dead"), (scheduled, "scheduled")):
        resp = api.post(f"/api/v1/jobs/{job_id}/move", json={"queue": target})
        assert resp.status_code == 200, resp.text
        assert (resp.json()["queue"], resp.json()["state"]) == (target, state)
    counts = get_queue(api, target)["counts"]
    assert (counts["dead"], counts["scheduled"]) == (1, 1)
    counts = get_queue(api, queue)["counts"]
    assert (counts["dead"], counts["scheduled"]) == (0, 0)


def test_move_active_job_is_409(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue)
    fetch_one(api, queue)
    resp = api.post(f"/api/v1/jobs/{job_id}/move", json={"queue": f"{queue}.x"})
    assert resp.status_code == 409
    assert error_code(resp) == "CONFLICT"
    job = get_job(api, job_id)
    assert (job["queue"], job["state"]) == (queue, "active")
    assert ack(api, job_id).status_code == 200


def test_move_bad_requests(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue)
    resp = api.post(f"/api/v1/jobs/{job_id}/move", json={"queue": "bad name!"})
    assert resp.status_code == 400
    assert error_code(resp) == "VALIDATION_ERROR"
    resp = api.post(f"/api/v1/jobs/{job_id}/move", json={})
    assert resp.status_code == 400
    resp = api.post(
        f"/api/v1/jobs/{job_id}/move",
        content=b'{"queue": "x"}',
        headers={"Content-Type": "text/plain"},
    )
    assert resp.status_code == 415
    assert get_job(api, job_id)["queue"] == queue
    resp = api.post(f"/api/v1/jobs/{UNKNOWN_JOB}/move", json={"queue": queue})
    assert resp.status_code == 404


def test_move_keeps_the_unique_lock_in_the_original_queue(api: httpx.Client, queue: str) -> None:
    first = _enqueue_unique(api, queue, "k")
    resp = api.post(f"/api/v1/jobs/{first['job_id']}/move", json={"queue": f"{queue}.b"})
    assert resp.status_code == 200
    # spec 11: move neither takes nor moves locks; the unfinished holder still blocks
    dup = _enqueue_unique(api, queue, "k")
    assert (dup["unique_existing"], dup["job_id"]) == (True, first["job_id"])


# --- delete ------------------------------------------------------------------------------------


def test_delete_job(api: httpx.Client, queue: str) -> None:
    keep = enqueue(api, queue)
    job_id = enqueue(api, queue)
    resp = api.delete(f"/api/v1/jobs/{job_id}")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"status": "deleted"}
    assert api.get(f"/api/v1/jobs/{job_id}").status_code == 404
    assert get_queue(api, queue)["counts"]["pending"] == 1
    again = api.delete(f"/api/v1/jobs/{job_id}")
    assert again.status_code == 404
    assert error_code(again) == "NOT_FOUND"
    assert fetch_one(api, queue)["job_id"] == keep
    assert fetch(api, queue) is None


def test_delete_job_in_every_finished_state(api: httpx.Client, queue: str) -> None:
    ids = [_dead_job(api, queue), _completed_job(api, queue)]
    cancelled = enqueue(api, queue)
    api.post(f"/api/v1/jobs/{cancelled}/cancel")
    ids.append(cancelled)
    for job_id in ids:
        assert api.delete(f"/api/v1/jobs/{job_id}").status_code == 200
    counts = get_queue(api, queue)["counts"]
    assert all(n == 0 for n in counts.values()), counts


def test_delete_active_job_then_ack_is_404(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue)
    fetch_one(api, queue)
    assert api.delete(f"/api/v1/jobs/{job_id}").status_code == 200
    assert get_queue(api, queue)["counts"]["active"] == 0
    resp = ack(api, job_id)
    assert resp.status_code == 404
    assert heartbeat(api, {job_id: {}}) == {job_id: "lost"}


def test_delete_releases_unique_lock(api: httpx.Client, queue: str) -> None:
    first = _enqueue_unique(api, queue, "nightly")
    assert api.delete(f"/api/v1/jobs/{first['job_id']}").status_code == 200
    again = _enqueue_unique(api, queue, "nightly")
    assert again["unique_existing"] is False
    assert again["job_id"] != first["job_id"]
    assert get_job(api, again["job_id"])["state"] == "pending"


# --- batches -----------------------------------------------------------------------------------


def _batch(api: httpx.Client, queue: str, n: int) -> tuple[str, list[str]]:
    resp = api.post(
        "/api/v1/enqueue/batch",
        json={
            "jobs": [{"queue": queue, "payload": i} for i in range(n)],
            "batch": {"callback_queue": f"{queue}.done", "callback_payload": {"tag": "x"}},
        },
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    return body["batch_id"], body["job_ids"]


def _get_batch(api: httpx.Client, batch_id: str) -> dict[str, Any]:
    resp = api.get(f"/api/v1/batches/{batch_id}")
    assert resp.status_code == 200, resp.text
    batch: dict[str, Any] = resp.json()
    return batch


def test_batch_shape_and_unknown_batch(api: httpx.Client, queue: str) -> None:
    batch_id, _ = _batch(api, queue, 2)
    batch = _get_batch(api, batch_id)
    assert set(batch) == {
        "id",
        "state",
        "total",
        "pending",
        "succeeded",
        "failed",
        "callback_queue",
        "callback_payload",
        "callback_job_id",
        "created_at",
        "completed_at",
    }
    assert (batch["id"], batch["state"], batch["total"], batch["pending"]) == (
        batch_id,
        "running",
        2,
        2,
    )
    assert batch["callback_job_id"] is None
    assert batch["completed_at"] is None
    assert api.get("/api/v1/batches/batch_01ARZ3NDEKTSV4RRFFQ69G5FAV").status_code == 404


def test_deleted_batch_jobs_count_as_failed_and_callback_fires_once(
    api: httpx.Client, queue: str
) -> None:
    batch_id, (a, b, c) = _batch(api, queue, 3)
    assert api.delete(f"/api/v1/jobs/{a}").status_code == 200
    batch = _get_batch(api, batch_id)
    assert (batch["pending"], batch["failed"], batch["succeeded"]) == (2, 1, 0)

    # a cancelled one counts as failed too; the last one succeeds
    assert api.post(f"/api/v1/jobs/{b}/cancel").json() == {"status": "cancelled"}
    assert fetch_one(api, queue)["job_id"] == c
    assert ack(api, c).status_code == 200

    batch = _get_batch(api, batch_id)
    assert batch["state"] == "completed"
    assert (batch["pending"], batch["failed"], batch["succeeded"]) == (0, 2, 1)
    callback = batch["callback_job_id"]
    assert callback is not None
    done = f"{queue}.done"
    job = fetch_one(api, done)
    assert job["job_id"] == callback
    assert job["payload"] == {
        "batch_id": batch_id,
        "total": 3,
        "succeeded": 1,
        "failed": 2,
        "callback_payload": {"tag": "x"},
    }
    assert job["tags"] == {"batch_id": batch_id}

    # deleting a finished batch job, or retrying one, changes nothing and fires nothing more
    assert api.delete(f"/api/v1/jobs/{c}").status_code == 200
    assert api.post(f"/api/v1/jobs/{b}/retry").status_code == 200
    assert api.delete(f"/api/v1/jobs/{b}").status_code == 200
    batch = _get_batch(api, batch_id)
    assert (batch["pending"], batch["failed"], batch["succeeded"]) == (0, 2, 1)
    assert batch["callback_job_id"] == callback
    assert fetch(api, done) is None
    queue_done = get_queue(api, done)
    assert queue_done["totals"]["enqueued"] == 1


def test_deleting_active_batch_job_completes_the_batch(api: httpx.Client, queue: str) -> None:
    batch_id, (a,) = _batch(api, queue, 1)
    fetch_one(api, queue)
    assert api.delete(f"/api/v1/jobs/{a}").status_code == 200
    batch = _get_batch(api, batch_id)
    assert (batch["state"], batch["failed"], batch["succeeded"]) == ("completed", 1, 0)
    assert fetch_one(api, f"{queue}.done")["job_id"] == batch["callback_job_id"]


def test_move_retrying_and_cancelled_jobs(api: httpx.Client, queue: str) -> None:
    target = f"{queue}.t"
    retrying = enqueue(api, queue, retry_backoff="fixed", retry_base_delay="1h")
    fetch_one(api, queue)
    assert fail(api, retrying).json()["status"] == "retrying"
    cancelled = enqueue(api, queue)
    api.post(f"/api/v1/jobs/{cancelled}/cancel")
    for job_id, state in ((retrying, "retrying"), (cancelled, "cancelled")):
        resp = api.post(f"/api/v1/jobs/{job_id}/move", json={"queue": target})
        assert resp.status_code == 200, resp.text
        assert (resp.json()["queue"], resp.json()["state"]) == (target, state)
    counts = get_queue(api, target)["counts"]
    assert (counts["retrying"], counts["cancelled"]) == (1, 1)
    counts = get_queue(api, queue)["counts"]
    assert (counts["retrying"], counts["cancelled"]) == (0, 0)


def test_moved_unique_job_frees_its_key_when_it_finishes(api: httpx.Client, queue: str) -> None:
    target = f"{queue}.b"
    first = _enqueue_unique(api, queue, "k")
    api.post(f"/api/v1/jobs/{first['job_id']}/move", json={"queue": target})
    assert fetch_one(api, target)["job_id"] == first["job_id"]
    assert ack(api, first["job_id"]).status_code == 200
    again = _enqueue_unique(api, queue, "k")
    assert again["unique_existing"] is False
    assert again["job_id"] != first["job_id"]
