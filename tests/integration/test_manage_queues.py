"""Operator actions on queues over HTTP: clear, drain, delete."""

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
    one_job_in_each_state,
    wait_for,
)


def _queue_names(api: httpx.Client) -> set[str]:
    resp = api.get("/api/v1/queues")
    assert resp.status_code == 200, resp.text
    return {q["name"] for q in resp.json()["queues"]}


# --- clear -------------------------------------------------------------------------------------


def test_clear_deletes_only_waiting_jobs(api: httpx.Client, queue: str) -> None:
    jobs = one_job_in_each_state(api, queue)
    resp = api.post(f"/api/v1/queues/{queue}/clear")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"cleared": 3}

    for state in ("pending", "scheduled", "retrying"):
        assert api.get(f"/api/v1/jobs/{jobs[state]}").status_code == 404, state
    for state in ("active", "completed", "dead", "cancelled"):
        assert get_job(api, jobs[state])["state"] == state
    counts = get_queue(api, queue)["counts"]
    assert counts == {
        "scheduled": 0,
        "pending": 0,
        "active": 1,
        "retrying": 0,
        "completed": 1,
        "dead": 1,
        "cancelled": 1,
    }
    # the active job is untouched and can still finish
    assert ack(api, jobs["active"]).status_code == 200
    assert api.post(f"/api/v1/queues/{queue}/clear").json() == {"cleared": 0}


def test_clear_releases_unique_locks(api: httpx.Client, queue: str) -> None:
    first = api.post("/api/v1/enqueue", json={"queue": queue, "unique_key": "u"}).json()
    assert api.post(f"/api/v1/queues/{queue}/clear").json() == {"cleared": 1}
    resp = api.post("/api/v1/enqueue", json={"queue": queue, "unique_key": "u"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["job_id"] != first["job_id"]


def test_clear_unknown_queue_is_404_and_bad_name_is_400(api: httpx.Client, queue: str) -> None:
    resp = api.post(f"/api/v1/queues/{queue}.never/clear")
    assert resp.status_code == 404
    assert error_code(resp) == "NOT_FOUND"
    assert f"{queue}.never" not in _queue_names(api)
    resp = api.post("/api/v1/queues/bad%20name/clear")
    assert resp.status_code == 400
    assert error_code(resp) == "VALIDATION_ERROR"


def test_clear_of_a_paused_queue_before_any_job(api: httpx.Client, queue: str) -> None:
    # pause creates the queue's configuration, so clear knows it
    assert api.post(f"/api/v1/queues/{queue}/pause").status_code == 200
    assert api.post(f"/api/v1/queues/{queue}/clear").json() == {"cleared": 0}


# --- drain -------------------------------------------------------------------------------------


def test_drain_waits_for_active_jobs_then_pauses(api: httpx.Client, queue: str) -> None:
    active = enqueue(api, queue)
    fetch_one(api, queue)
    waiting = enqueue(api, queue)

    resp = api.post(f"/api/v1/queues/{queue}/drain")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["name"] == queue
    assert (body["draining"], body["paused"]) == (True, False)
    assert body["counts"]["active"] == 1

    # no new jobs are handed out while draining
    assert fetch(api, queue) is None
    listed = get_queue(api, queue)
    assert (listed["draining"], listed["paused"]) == (True, False)

    assert ack(api, active).status_code == 200

    def drained() -> dict[str, Any] | None:
        entry = get_queue(api, queue)
        return entry if (entry["draining"], entry["paused"]) == (False, True) else None

    wait_for(drained, timeout=5, what="drain to finish")
    assert fetch(api, queue) is None
    assert get_job(api, waiting)["state"] == "pending"

    resumed = api.post(f"/api/v1/queues/{queue}/resume")
    assert (resumed.json()["paused"], resumed.json()["draining"]) == (False, False)
    assert fetch_one(api, queue)["job_id"] == waiting


def test_drain_ends_when_the_active_job_fails(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue, max_retries=0)
    fetch_one(api, queue)
    assert api.post(f"/api/v1/queues/{queue}/drain").json()["draining"] is True
    assert fail(api, job_id).json()["status"] == "dead"
    wait_for(
        lambda: get_queue(api, queue)["paused"] and not get_queue(api, queue)["draining"],
        timeout=5,
        what="drain to finish",
    )


def test_drain_without_active_jobs_pauses(api: httpx.Client, queue: str) -> None:
    enqueue(api, queue)
    resp = api.post(f"/api/v1/queues/{queue}/drain")
    assert resp.status_code == 200, resp.text

    def paused() -> dict[str, Any] | None:
        entry = get_queue(api, queue)
        return entry if (entry["draining"], entry["paused"]) == (False, True) else None

    entry = wait_for(paused, timeout=5, what="queue paused")
    assert entry["counts"]["pending"] == 1
    assert fetch(api, queue) is None


def test_drain_unknown_queue_is_404(api: httpx.Client, queue: str) -> None:
    resp = api.post(f"/api/v1/queues/{queue}.never/drain")
    assert resp.status_code == 404
    assert error_code(resp) == "NOT_FOUND"
    assert api.post("/api/v1/queues/bad%20name/drain").status_code == 400


# --- delete ------------------------------------------------------------------------------------


def test_delete_queue_needs_confirm(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue)
    for url in (f"/api/v1/queues/{queue}", f"/api/v1/queues/{queue}?confirm=false"):
        resp = api.delete(url)
        assert resp.status_code == 400, url
        assert error_code(resp) == "VALIDATION_ERROR"
    assert get_job(api, job_id)["state"] == "pending"
    assert get_queue(api, queue)["counts"]["pending"] == 1


def test_delete_queue_with_all_its_jobs(api: httpx.Client, queue: str) -> None:
    other = f"{queue}.other"
    jobs = one_job_in_each_state(api, queue)
    survivor = enqueue(api, other)
    resp = api.delete(f"/api/v1/queues/{queue}", params={"confirm": "true"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"deleted_jobs": 7}
    for job_id in jobs.values():
        assert api.get(f"/api/v1/jobs/{job_id}").status_code == 404
    names = _queue_names(api)
    assert queue not in names
    assert other in names
    assert get_job(api, survivor)["state"] == "pending"
    # the worker that held the active job can no longer finish it
    assert ack(api, jobs["active"]).status_code == 404
    again = api.delete(f"/api/v1/queues/{queue}", params={"confirm": "true"})
    assert again.status_code == 404


def test_delete_queue_releases_unique_locks(api: httpx.Client, queue: str) -> None:
    first = api.post("/api/v1/enqueue", json={"queue": queue, "unique_key": "u"}).json()
    assert api.delete(f"/api/v1/queues/{queue}?confirm=true").json() == {"deleted_jobs": 1}
    resp = api.post("/api/v1/enqueue", json={"queue": queue, "unique_key": "u"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["job_id"] != first["job_id"]
    assert get_queue(api, queue)["counts"]["pending"] == 1


def test_delete_unknown_queue_is_404(api: httpx.Client, queue: str) -> None:
    resp = api.delete(f"/api/v1/queues/{queue}.never?confirm=true")
    assert resp.status_code == 404
    assert error_code(resp) == "NOT_FOUND"
    assert api.delete("/api/v1/queues/bad%20name?confirm=true").status_code == 400


def test_clear_of_many_jobs_counts_them_all(api: httpx.Client, queue: str) -> None:
    for _ in range(5):
        resp = api.post("/api/v1/enqueue/batch", json={"jobs": [{"queue": queue}] * 1000})
        assert resp.status_code == 201, resp.text
    active = fetch_one(api, queue)["job_id"]
    resp = api.post(f"/api/v1/queues/{queue}/clear")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"cleared": 4999}
    counts = get_queue(api, queue)["counts"]
    assert (counts["pending"], counts["active"]) == (0, 1)
    assert get_job(api, active)["state"] == "active"
