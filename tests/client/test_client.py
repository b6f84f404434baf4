"""`Client` against a real server: the job lifecycle and every method the server offers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobbie import Client, Conflict, Job, LeaseLost, NotFound, models


def test_lifecycle_through_the_client(client: Client, queue: str) -> None:
    r = client.enqueue(queue, {"to": "a@example.com"}, tags={"tenant": "acme"}, max_retries=5)
    assert (r.status, r.unique_existing) == ("pending", False)
    job = client.get_job(r.job_id)
    assert (job.state, job.attempt, job.max_retries) == ("pending", 0, 5)
    assert job.payload == {"to": "a@example.com"}
    assert job.tags == {"tenant": "acme"}
    assert isinstance(job.created_at, datetime)

    fetched = client.fetch([queue], worker_id="w-life", timeout=1)
    assert isinstance(fetched, Job)
    assert (fetched.id, fetched.state, fetched.attempt) == (r.job_id, "active", 1)
    assert fetched.payload == {"to": "a@example.com"}
    assert fetched.worker is not None and fetched.worker.id == "w-life"
    assert fetched.lease_duration == 60

    answer = client.heartbeat(
        {r.job_id: {"progress": {"current": 3, "total": 10, "message": "sending"}}}
    )
    assert answer == {r.job_id: "ok"}
    assert client.heartbeat({r.job_id: {"checkpoint": {"offset": 3}}}) == {r.job_id: "ok"}
    assert client.ack(r.job_id, {"sent": True}) == "completed"

    done = client.get_job(r.job_id)
    assert done.state == "completed"
    assert done.result == {"sent": True}
    assert done.checkpoint == {"offset": 3}
    assert done.progress == models.JobProgress(current=3, total=10, message="sending")
    assert done.worker is not None and done.worker.id == "w-life"
    assert [e.type for e in done.events] == ["enqueued", "started", "completed"]
    assert done.completed_at is not None and done.completed_at.tzinfo is not None


def test_enqueue_options(client: Client, queue: str) -> None:
    first = client.enqueue(queue, {"n": 1}, priority="high", unique_key="welcome-a")
    again = client.enqueue(queue, {"n": 2}, unique_key="welcome-a")
    assert again.unique_existing is True
    assert again.job_id == first.job_id
    job = client.get_job(first.job_id)
    assert (job.priority, job.unique_key, job.payload) == ("high", "welcome-a", {"n": 1})

    later = client.enqueue(queue, None, delay="10s", retry_backoff="linear", expire_after=3600)
    assert later.status == "scheduled"
    job = client.get_job(later.job_id)
    assert job.scheduled_at is not None
    assert 8 < (job.scheduled_at - datetime.now(UTC)).total_seconds() <= 10.5
    assert job.retry_backoff == "linear"
    assert job.expire_at is not None

    at = datetime(2030, 1, 1, tzinfo=UTC)
    assert client.enqueue(queue, scheduled_at=at).status == "scheduled"
    assert client.enqueue(queue, scheduled_at="2030-01-01T00:00:00Z").status == "scheduled"


def test_enqueue_batch_fetch_many_and_ack_batch(client: Client, queue: str) -> None:
    done = f"{queue}.done"
    b = client.enqueue_batch(
        [{"queue": queue, "payload": {"i": i}, "priority": "critical"} for i in range(3)],
        callback_queue=done,
        callback_payload={"report": 7},
    )
    assert len(b.job_ids) == 3
    assert b.batch_id is not None and b.batch_id.startswith("batch_")

    jobs = client.fetch(queue, count=5, timeout=1)
    assert sorted(j.id for j in jobs) == sorted(b.job_ids)
    results = client.ack_batch({j.id: {"i": j.payload["i"]} for j in jobs})
    assert [(r.job_id, r.status) for r in results] == [(j.id, "completed") for j in jobs]
    assert client.get_job(jobs[0].id).result == {"i": jobs[0].payload["i"]}

    callback = client.fetch(done, timeout=5)
    assert callback is not None
    assert callback.payload == {
        "batch_id": b.batch_id,
        "total": 3,
        "succeeded": 3,
        "failed": 0,
        "callback_payload": {"report": 7},
    }
    assert client.ack(callback) == "completed"

    plain = client.enqueue_batch([{"queue": queue}, {"queue": queue, "payload": [1]}])
    assert plain.batch_id is None
    tracked = client.enqueue_batch([{"queue": queue}], batch=True)
    assert tracked.batch_id is not None


def test_fetch_with_nothing_to_do(client: Client, queue: str) -> None:
    assert client.fetch(queue, timeout=0) is None
    assert client.fetch([queue], timeout=0, count=3) == []
    assert client.fetch(queue, timeout="100ms") is None


def test_fail_retry_and_release(client: Client, queue: str) -> None:
    job_id = client.enqueue(queue, {"n": 1}, max_retries=2, retry_backoff="none").job_id
    job = client.fetch(queue, timeout=1)
    assert job is not None
    answer = client.fail(job.id, "boom", backtrace="Traceback: here")
    assert (answer.status, answer.attempts_remaining) == ("retrying", 2)
    assert answer.next_attempt_at is not None

    again = client.fetch(queue, timeout=2)
    assert again is not None and again.attempt == 2
    assert client.release(again, {"page": 4}) == "pending"
    job = client.get_job(job_id)
    assert (job.state, job.attempt, job.checkpoint) == ("pending", 1, {"page": 4})
    assert [(e.attempt, e.error, e.backtrace) for e in job.errors] == [
        (1, "boom", "Traceback: here")
    ]
    assert job.errors[0].at.tzinfo is not None
    assert "released" in [e.type for e in job.events]

    third = client.fetch(queue, timeout=1)
    assert third is not None
    assert (third.attempt, third.checkpoint) == (2, {"page": 4})
    assert client.release(third) == "pending"
    assert client.get_job(job_id).checkpoint == {"page": 4}


def test_fencing_is_sent_without_being_asked(client: Client, queue: str) -> None:
    job_id = client.enqueue(queue, max_retries=3, retry_backoff="none").job_id
    first = client.fetch(queue, worker_id="a", timeout=1)
    assert first is not None
    client.fail(job_id, "first attempt failed")
    with Client(client.url) as other:
        second = other.fetch(queue, worker_id="b", timeout=2)
        assert second is not None and second.attempt == 2
        # The first client remembers its lease (worker a, attempt 1): fenced out.
        with pytest.raises(LeaseLost) as caught:
            client.ack(job_id, "late")
        assert caught.value.code == "LEASE_LOST"
        with pytest.raises(LeaseLost):
            client.fail(first, "late")
        with pytest.raises(LeaseLost):
            client.release(job_id)
        assert client.heartbeat({job_id: {}}) == {job_id: "lost"}
        assert other.heartbeat({job_id: {}}) == {job_id: "ok"}
        assert other.ack(job_id, "on time") == "completed"
    assert client.get_job(job_id).result == "on time"


def test_cancel_job(client: Client, queue: str) -> None:
    waiting = client.enqueue(queue).job_id
    assert client.cancel_job(waiting) == "cancelled"
    assert client.get_job(waiting).state == "cancelled"

    running = client.enqueue(queue).job_id
    assert client.fetch(queue, timeout=1) is not None
    assert client.cancel_job(running) == "cancelling"
    assert client.get_job(running).cancel_requested is True
    assert client.heartbeat({running: {}}) == {running: "cancel"}
    assert client.ack(running) == "cancelled"
    with pytest.raises(Conflict):
        client.cancel_job(running)


def test_queue_configuration(client: Client, queue: str) -> None:
    client.enqueue(queue)
    paused = client.pause(queue)
    assert (paused.name, paused.paused) == (queue, True)
    assert client.fetch(queue, timeout=0) is None
    assert client.resume(queue).paused is False

    assert client.set_concurrency(queue, 1).max_concurrency == 1
    assert client.set_concurrency(queue, None).max_concurrency is None
    throttled = client.set_throttle(queue, rate=100, period="1m")
    assert throttled.throttle == models.Throttle(rate=100, period=60.0)
    assert client.remove_throttle(queue).throttle is None

    listed = {q.name: q for q in client.queues()}
    assert listed[queue].counts.pending == 1
    assert listed[queue].totals.enqueued == 1
    assert client.queue(queue).counts == listed[queue].counts
    with pytest.raises(NotFound):
        client.queue(f"{queue}.never")


def test_health(client: Client) -> None:
    assert client.health().status == "ok"


def test_get_job_and_search_results_decode_every_field(client: Client, queue: str) -> None:
    job_id = client.enqueue(queue, [1, "two", None], unique_key="u", unique_period=60).job_id
    job = client.get_job(job_id)
    assert job.payload == [1, "two", None]
    assert (job.unique_key, job.unique_period) == ("u", 60.0)
    assert (job.retry_backoff, job.retry_base_delay, job.retry_max_delay) == (
        "exponential",
        5.0,
        600.0,
    )
    assert job.checkpoint is None and job.result is None and job.progress is None
    assert job.worker is None and job.lease_expires_at is None
    assert job.errors == [] and [e.type for e in job.events] == ["enqueued"]


def test_client_waits_longer_than_the_long_poll(client: Client, queue: str) -> None:
    # A 1.5 s long-poll with a 1 s client timeout still succeeds: fetch reads for longer.
    with Client(client.url, timeout=1.0) as short:
        started = datetime.now(UTC)
        assert short.fetch(queue, timeout=1.5) is None
        assert (datetime.now(UTC) - started).total_seconds() >= 1.4
